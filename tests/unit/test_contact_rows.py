"""The contact import's fast path loads a row exactly as ContactImportRowSchema does, or
steps aside; either way the import accepts, rejects and stores the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from schemas.contacts import ContactImportRowSchema, fast_load_contact_row
from server.services.contact_import import _first_error, load_row
from sync.contacts import natural_key

SCHEMA = ContactImportRowSchema()
BASE = {
    "case_external_id": "C-0001",
    "channel": "phone_call",
    "direction": "outbound",
    "occurred_at": "2026-11-24T09:05:00+08:00",
    "outcome": "voicemail",
    "agent": "seat-7",
    "duration_s": 40,
    "notes": "left a callback number",
    "external_ref": "CALL-1",
}
# Values near every edge of every field, good and bad.
VALUES = {
    "case_external_id": ["C", "a" * 64, "a" * 65, "", " C ", "C\n", "C\x00", "C\t", "ü", 7, None],
    "channel": ["sms", "email", "letter", "notice", "legal_letter", "home_visit", "SMS", "", 1],
    "direction": ["inbound", "outbound", "Inbound", "", None, 0],
    "occurred_at": [
        "2026-11-24T09:05:00Z",
        "2026-11-24T09:05:00.123456+08:00",
        "2026-11-24T09:05:00.1+08:00",
        "2026-11-24T09:05:00-00:00",
        "2026-11-24T09:05:00+23:59",
        "2026-11-24T09:05:00+24:00",
        "2026-11-24T09:05:00",
        "2026-11-24",
        "2026-02-30T10:00:00Z",
        "2026-11-24T24:00:00Z",
        "1900-01-01T00:00:00Z",
        "1899-12-31T23:59:59Z",
        "1900-01-01T08:00:00+08:00",
        "2100-12-31T23:59:59Z",
        "2101-01-01T00:00:00Z",
        "2100-12-31T23:59:59-01:00",
        "2026-11-24 09:05:00+08:00",
        "2026-11-24T09:05:00+0800",
        "2026-11-24T09:05:00.1234567Z",
        "2026-11-24T09:05Z",
        1,
        None,
    ],
    "outcome": ["reached", "sent", "busy", "met_borrower", "Reached", "", "a" * 41, None, 3],
    "agent": ["a", "a" * 128, "a" * 129, "", "Seat 7", "seat\x7f", "\ud800", None, 5],
    "duration_s": [
        0,
        86_400,
        86_401,
        -1,
        "40",
        "040",
        "00000",
        "86400",
        "86401",
        " 40",
        "4_0",
        "40.0",
        "",
        "١٢",
        40.0,
        40.5,
        True,
        2**70,
        None,
    ],
    "notes": ["", "a" * 2000, "a" * 2001, "line\nline", "tab\tbed", "bell\x07", None, 1],
    "external_ref": ["R", "a" * 128, "a" * 129, "", "R\x1b", None, 1],
}


def _comparable(loaded: dict) -> dict:
    """A loaded row, its time with its offset spelled out: equal instants in other offsets
    read differently in flag details."""
    moment = loaded.get("occurred_at")
    return {**loaded, "occurred_at": (moment, moment.isoformat(), moment.utcoffset())}


def _check(raw: dict) -> None:
    fast = fast_load_contact_row(raw)
    try:
        slow = SCHEMA.load(raw)
    except ValidationError:
        assert fast is None, raw
        return
    if fast is not None:
        assert _comparable(fast) == _comparable(slow), raw


@pytest.mark.parametrize(("field", "value"), [(f, v) for f, vs in VALUES.items() for v in vs])
def test_each_edge_value_alone(field, value):
    _check({**BASE, field: value})


def test_a_missing_or_unknown_field_is_left_to_the_schema():
    for field in BASE:
        raw = {k: v for k, v in BASE.items() if k != field}
        _check(raw)
    assert fast_load_contact_row({**BASE, "extra": "1"}) is None
    assert fast_load_contact_row({**BASE, "bad\x00key": "1"}) is None


def test_plain_rows_take_the_fast_path():
    assert fast_load_contact_row(BASE) == SCHEMA.load(BASE)
    minimal = {k: BASE[k] for k in ("case_external_id", "channel", "occurred_at", "outcome")}
    loaded = fast_load_contact_row({**minimal, "agent": "x"})
    assert loaded == SCHEMA.load({**minimal, "agent": "x"})
    assert loaded["direction"] == "outbound"
    # A CSV row: every cell is text.
    csv_row = {**BASE, "duration_s": "40"}
    assert fast_load_contact_row(csv_row) == SCHEMA.load(csv_row)


def test_the_import_reads_every_row_as_the_schema_does():
    """load_row (fast path, else schema): the schema's value, or its first error's field."""
    assert load_row(BASE) == (SCHEMA.load(BASE), None)
    row, error = load_row({**BASE, "outcome": "sent"})
    assert row is None and error[0] == "outcome"
    row, error = load_row({**BASE, "duration_s": "4_0x"})
    assert row is None and error[0] == "duration_s"


_ROWS = st.fixed_dictionaries(
    {},
    optional={
        field: st.one_of(
            st.sampled_from(values),
            st.text(max_size=40),
            st.integers(min_value=-(2**65), max_value=2**65),
            st.none(),
        )
        for field, values in VALUES.items()
    },
)


@settings(max_examples=300, deadline=None)
@given(_ROWS)
def test_any_row_gets_the_schemas_answer(raw):
    _check(raw)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(sorted(VALUES)),
        st.one_of(st.sampled_from([v for vs in VALUES.values() for v in vs]), st.text()),
        max_size=4,
    )
)
def test_a_valid_row_mutated_gets_the_schemas_answer(changes):
    raw = {**BASE, **changes}
    _check(raw)
    try:
        expected = (SCHEMA.load(raw), None)
    except ValidationError as exc:
        expected = (None, _first_error(exc.messages))
    assert load_row(raw) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=8)), timezone(-timedelta(hours=5, minutes=30))]
        ),
    )
)
def test_the_natural_key_spells_the_utc_second_as_it_always_did(moment):
    second = moment.astimezone(UTC).replace(microsecond=0)
    expected = f"7|sms|outbound|{second.strftime('%Y-%m-%dT%H:%M:%SZ')}|ext:seat-7"
    assert natural_key(7, "sms", "outbound", moment, "ext:seat-7") == expected
