"""raw_digest trusts msgspec's spelling of a record unless a float in it may be spelled
unlike json.dumps; floats of every magnitude, beside nulls, NaN, infinities and text that
looks like a number, give the digest of the standard library's spelling."""

from __future__ import annotations

import hashlib
import json
import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from server.services.push_validation import raw_digest


def reference(raw):
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def test_floats_of_every_magnitude():
    rng = random.Random(7)
    numbers = [0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308]
    for exponent in range(-323, 308):
        for _ in range(6):
            numbers.append(rng.uniform(1, 1.7) * 10.0**exponent)
        numbers.append(10.0**exponent)
    numbers += [math.nextafter(1e16, 0), 1e16, math.nextafter(1e-4, 0), 1e-4, 9999999999999999.5]
    for number in numbers:
        for sign in (1, -1):
            value = sign * number
            for raw in (
                {"id": "r", "body": {"location": {"lat": value, "lon": 2.5}}},
                {"id": "r", "body": {"n": [1, value]}, "x": None},
                {"id": "r", "body": {"a": [value]}, "note": "null:0.0000 1e5"},
            ):
                assert raw_digest(raw) == reference(raw), value


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.floats() | st.none() | st.integers() | st.sampled_from(["null", ":1e5", ",0.00001"]),
        max_size=6,
    )
)
def test_mixed_values(values):
    raw = {"id": "r", "kind": "visit_report", "body": {f"k{i}": v for i, v in enumerate(values)}}
    assert raw_digest(raw) == reference(raw)
