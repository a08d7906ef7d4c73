"""The JSON a push writes into sync_records (body and outcome) and the UUIDs it keys them by:
the fast writers give what the standard library gave, so the store reads the same values
whether a row was written before or after them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from server.clock import to_iso
from server.services.sync_push import _body_json, _outcome_json
from sync.canonical import CanonicalFormError, canonical_uuid
from sync.compliance import Flag
from sync.records import RecordOutcome


def reference_body_json(body):
    """The body's stored text as push wrote it before msgspec (json.dumps with a default)."""

    def plain(value):
        if isinstance(value, datetime):
            return to_iso(value)
        if isinstance(value, date):
            return value.isoformat()
        return str(value)

    return json.dumps(dict(body), sort_keys=True, default=plain)


leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]))
    | st.dates()
    | st.decimals(allow_nan=False, allow_infinity=False, places=2)
)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


def record_with(body):
    """What _body_json reads of a record: its body (any values, checked or not)."""
    return SimpleNamespace(body=body)


@given(st.dictionaries(st.text(max_size=8), values, max_size=6))
def test_stored_body_reads_back_as_before(body):
    text = _body_json(record_with(body))
    assert json.loads(text) == json.loads(reference_body_json(body))


def test_stored_body_is_sorted_and_keeps_the_store_time_format():
    body = {
        "outcome": "not_home",
        "arrived_at": datetime(2026, 12, 1, 13, 5, tzinfo=timezone(timedelta(hours=8))),
        "promise_date": date(2026, 12, 20),
        "promise_amount": Decimal("150.00"),
        "notes": "门口没人 \ud800",  # a lone surrogate: the standard library writes it
        "location": {"lon": 121.4, "lat": 31.2},
    }
    text = _body_json(record_with(body))
    assert json.loads(text) == json.loads(reference_body_json(body))
    clean = {k: v for k, v in body.items() if k != "notes"}
    text = _body_json(record_with(clean))
    assert text.index('"arrived_at"') < text.index('"location"') < text.index('"outcome"')
    assert '"arrived_at":"2026-12-01T05:05:00.000000Z"' in text
    assert '"promise_amount":"150.00"' in text and '"promise_date":"2026-12-20"' in text


def test_stored_outcome_reads_back_as_before():
    outcome = RecordOutcome(
        "3f2b8c1e-0000-4000-8000-000000000001",
        "flagged",
        message="Stored, with flags.",
        flags=(Flag("visit_hours", "Outside 08:00–20:00 local", {"local_time": "21:05"}),),
    )
    assert json.loads(_outcome_json(outcome)) == json.loads(json.dumps(outcome.to_dict()))


@given(st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper()) | st.text(max_size=40))
def test_canonical_uuid_fast_path_agrees_with_the_uuid_module(text):
    try:
        expected = str(uuid.UUID(text)) if len(text) == 36 else None
    except ValueError:
        expected = None
    try:
        got = canonical_uuid("id", text)
    except CanonicalFormError:
        got = None
    assert got == expected


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), ZoneInfo("UTC")]),
    )
)
def test_store_time_text_is_isoformat_in_utc(moment):
    expected = moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    assert to_iso(moment) == expected
