"""record_digest's inline conversions (sync/canonical._digestible) give the digest the
general conversion gives, for every value a decoded record can hold: stored digests of
earlier pushes keep telling replays from reused ids."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from sync.canonical import _decimal_text, record_digest


def reference_digestible(value, path):
    """The conversion as it was before the inline fast path (one isinstance chain)."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int | float | Decimal):
        return _decimal_text(value, path)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return value.isoformat()
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return {
            k: reference_digestible(v, f"{path}.{k}") for k, v in value.items() if v is not None
        }
    if isinstance(value, list | tuple):
        return [reference_digestible(v, f"{path}[{i}]") for i, v in enumerate(value)]
    raise TypeError(path)


def reference_digest(kind, body):
    document = {"kind": kind, "body": reference_digestible(body, "body")}
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(b"doorstep-record-v1\n" + text.encode("utf-8")).hexdigest()


moments = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
) | st.datetimes(timezones=st.just(timezone(timedelta(hours=8))))
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=["Cs"]))
    | moments
    | st.decimals(allow_nan=False, allow_infinity=False)
)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=8), values, max_size=8))
def test_inline_conversion_gives_the_reference_digest(body):
    assert record_digest("visit_report", body) == reference_digest("visit_report", body)


def test_floats_near_the_exponent_boundaries():
    for number in (1e16, 1e15, 123456789012345.6, 1e-4, 1e-5, 0.1, -0.0, 0.0, 2.50, 1e300):
        body = {"x": number, "nested": {"y": number}}
        assert record_digest("k", body) == reference_digest("k", body)


def test_whole_second_and_fractional_utc_times():
    for moment in (
        datetime(2026, 12, 1, 5, 0, tzinfo=UTC),
        datetime(2026, 12, 1, 5, 0, 0, 1, tzinfo=UTC),
        datetime(1900, 1, 1, tzinfo=UTC),
        datetime(999, 3, 4, 1, 2, 3, tzinfo=UTC),
        datetime(2100, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ):
        body = {"arrived_at": moment, "nested": {"at": moment}}
        assert record_digest("k", body) == reference_digest("k", body)


def reference_raw_digest(raw):
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # every magnitude, NaN and infinities (json.loads reads NaN too)
    | st.text()  # lone surrogates included
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6), st.text(max_size=8))
def test_raw_digest_is_the_sorted_json_digest(body, record_id):
    from server.services.push_validation import raw_digest

    raw = {"id": record_id or "r", "kind": "visit_report", "body": body}
    expected = reference_raw_digest(raw)
    if "id_last6" in body or not raw_digest({"id": raw["id"], "body": {}}):
        return  # no digest is kept for these (typed ID characters, unusable ids)
    assert raw_digest(raw) == expected


def test_raw_digest_floats_at_the_exponent_boundaries():
    from server.services.push_validation import raw_digest

    for number in (1e16, 9999999999999998.0, 1e-4, 9.9e-5, 1e-5, -0.0, 0.0, 1e300, 5e-324):
        raw = {"id": "r", "body": {"location": {"lat": number}}, "n": [number]}
        assert raw_digest(raw) == reference_raw_digest(raw)
