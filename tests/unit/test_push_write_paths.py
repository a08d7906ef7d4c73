"""The push's writers after their fourth round of trimming give what they gave before: the
raw digest's plainness test with its leaves checked inline (push_validation.plain_json),
the stored body converted without a copy (sync_push._body_json), and stored records inserted
as positional values (storage/sync.insert_record_values) rather than by column name, and
a record's blobs found without the call when it lists none (sync.reconcile.blobs_of)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType, SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from server.services.push_validation import plain_json
from server.services.sync_push import _SORTED_JSON, _body_json, _plain
from server.storage import sync as sync_rows
from server.storage.connection import open_db
from sync.reconcile import blobs_of
from sync.records import referenced_blobs
from tests.unit.test_push_store_json import leaves as store_json_leaves


def referenceplain_json(value):
    """plain_json as it was: one call per value."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return value == 0 or 1e-4 <= abs(value) < 1e16
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not referenceplain_json(item):
                return False
        return True
    if kind is list:
        return all(referenceplain_json(item) for item in value)
    return False


json_leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=4)
        | st.tuples(inner)
    ),
    max_leaves=16,
)


@given(json_values)
def testplain_json_answers_as_before(value):
    assert plain_json(value) == referenceplain_json(value)


def testplain_json_edges():
    for number in (0.0, -0.0, 1e-4, -1e-4, 9.99e-5, 1e16, math.nextafter(1e16, 0), math.nan):
        for value in (number, {"a": number}, [number], {"a": {"b": number}}, {"a": [number]}):
            assert plain_json(value) == referenceplain_json(value), value


def reference_body_json(body):
    """_body_json as it was: the body copied to a dict, then converted whole."""
    return _SORTED_JSON(_plain(dict(body))).decode("utf-8")


class Stamp(datetime):
    """A datetime subclass: converted by the isinstance branch, as before."""


# The stored-body test's leaves (tests/unit/test_push_store_json.py), and a datetime
# subclass, which only the isinstance branch converts.
leaves = store_json_leaves | st.datetimes(timezones=st.just(UTC)).map(
    lambda d: Stamp(d.year, d.month, d.day, d.hour, tzinfo=UTC)
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.tuples(inner) | st.dictionaries(st.text(max_size=6), inner)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=8), values, max_size=6), st.booleans())
def test_stored_body_is_written_as_before(body, frozen):
    held = MappingProxyType(body) if frozen else body  # a checked record's body is a proxy
    try:
        expected = reference_body_json(held)
    except (TypeError, UnicodeEncodeError):
        return  # the standard library writes these; both paths share that fallback
    assert _body_json(SimpleNamespace(body=held)) == expected


def test_records_inserted_as_values_equal_records_inserted_by_name(tmp_path):
    stored = []
    for name in ("by_name", "by_value"):
        db = open_db(str(tmp_path / f"{name}.db"))
        db.execute(
            f"CREATE TABLE sync_records (seq INTEGER PRIMARY KEY, "
            f"{', '.join(sync_rows.RECORD_COLUMNS)})"
        )
        rows = [
            {column: f"{column}-{n}" for column in sync_rows.RECORD_COLUMNS} | {"visit_id": n}
            for n in range(3)
        ]
        if name == "by_name":
            sync_rows.insert_records(db, rows)
        else:
            sync_rows.insert_record_values(
                db, [tuple(row[c] for c in sync_rows.RECORD_COLUMNS) for row in rows]
            )
        stored.append([tuple(r) for r in db.execute("SELECT * FROM sync_records ORDER BY seq")])
    assert stored[0] == stored[1] and len(stored[0]) == 3


def test_body_dates_and_amounts():
    body = {
        "arrived_at": datetime(2026, 12, 1, 5, 5, tzinfo=UTC),
        "departed_at": Stamp(2026, 12, 1, 5, 9, tzinfo=UTC),
        "promise_date": date(2026, 12, 20),
        "promise_amount": Decimal("150.00"),
        "location": {"lat": 31.2, "lon": 121.4},
        "attachments": [],
    }
    assert _body_json(SimpleNamespace(body=MappingProxyType(body))) == reference_body_json(body)


def outcome_of(call, record):
    """What a call answers or the type of error it raises."""
    try:
        return call(record)
    except Exception as error:  # noqa: BLE001 (the comparison is the point)
        return type(error), str(error)


sha = st.text("0123456789abcdef", min_size=64, max_size=64)
attachment_lists = (
    st.none()
    | st.just([])
    | st.just(())
    | st.just("")
    | st.just(0)
    | st.just(False)
    | st.text(max_size=3)
    | st.lists(sha | st.text(max_size=3) | st.integers(), max_size=3)
)


@given(
    st.sampled_from(["visit_report", "id_confirmation", "contact", "agreement", "other"]),
    st.dictionaries(
        st.sampled_from(["attachments", "borrower_signature_sha256", "agent_signature_sha256"]),
        attachment_lists | sha,
    ),
    st.booleans(),
)
def test_blobs_of_answers_as_referenced_blobs(kind, body, frozen):
    record = SimpleNamespace(kind=kind, body=MappingProxyType(body) if frozen else body)
    assert outcome_of(blobs_of, record) == outcome_of(referenced_blobs, record)
