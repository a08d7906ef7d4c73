"""The payment import's fast path loads a row exactly as PaymentRowSchema does, or steps aside."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from schemas.payments import PaymentRowSchema, fast_load_row

SCHEMA = PaymentRowSchema()
BASE = {
    "payment_id": "PAY-1",
    "case_external_id": "C-0001",
    "amount": "250.5",
    "currency": "CNY",
    "paid_at": "2026-11-20T10:00:00+08:00",
    "source": "bank_transfer",
}
# Values near every edge of every field, good and bad.
VALUES = {
    "payment_id": ["P", "a" * 64, "a" * 65, "", "P 1", "P\n", "P\x00", "ü", 7, None],
    "case_external_id": ["C-0001", "C/1:2.3_4", "", "C-0001\n", 1, None],
    "amount": [
        "1",
        "0.01",
        "0",
        "0.00",
        "-1",
        "10.005",
        "1.10",
        "999999999999999.99",
        "1000000000000000",
        "1e3",
        " 1",
        "1.",
        ".5",
        "NaN",
        12,
        12.5,
        True,
        None,
    ],
    "currency": ["CNY", "cny", "CN", "CNYY", "", 1, None],
    "paid_at": [
        "2026-11-20T10:00:00Z",
        "2026-11-20T10:00:00.123456+08:00",
        "2026-11-20T10:00:00",
        "2026-11-20",
        "2026-02-30T10:00:00Z",
        "2026-11-20T24:00:00Z",
        "1999-12-31T23:59:59Z",
        "2100-12-31T00:00:00+00:00",
        "2100-12-31T00:00:01Z",
        "2026-11-20 10:00:00+08:00",
        "2026-11-20T10:00:00+0800",
        "2026-11-20T10:00:00.1234567Z",
        1,
        None,
    ],
    "source": ["cash", "a" * 32, "a" * 33, "Cash", "", None, 3],
}
_MISSING = object()


def _schema_answer(raw: dict):
    try:
        return SCHEMA.load(raw)
    except ValidationError:
        return None


def _check(raw: dict) -> None:
    fast = fast_load_row(raw)
    if fast is not None:
        assert fast == SCHEMA.load(raw), raw


@pytest.mark.parametrize(("field", "value"), [(f, v) for f, vs in VALUES.items() for v in vs])
def test_each_edge_value_alone(field, value):
    _check({**BASE, field: value})


def test_a_missing_or_unknown_field_is_left_to_the_schema():
    for field in BASE:
        raw = {k: v for k, v in BASE.items() if k != field}
        _check(raw)
        if field != "source":
            assert fast_load_row(raw) is None and _schema_answer(raw) is None
    assert fast_load_row({**BASE, "extra": "1"}) is None


def test_plain_rows_take_the_fast_path():
    assert fast_load_row(BASE) == SCHEMA.load(BASE)
    assert fast_load_row({k: v for k, v in BASE.items() if k != "source"})["source"] == (
        "core_banking"
    )


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            field: st.one_of(st.sampled_from(values), st.text(max_size=40))
            for field, values in VALUES.items()
        },
    )
)
def test_any_row_gets_the_schemas_answer(raw):
    _check(raw)
