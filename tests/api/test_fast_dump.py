"""The compiled dump of the sync answers (schemas/fast_dump.py) writes exactly what
marshmallow writes: same keys, same values, same types, nothing the schema does not name."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from marshmallow import Schema, fields

from schemas.fast_dump import FastDump
from schemas.sync import PullResultSchema, PushResultSchema
from tests.golden.push.driver import golden_lines


def both(schema: Schema, obj):
    return schema.dump(obj), Schema.dump(schema, obj)


FLAG = {"code": "outside_visit_hours", "message": "late", "details": {"local": "21:30", "n": 2}}
OUTCOME = {
    "record_id": "A1B2",
    "status": "flagged",
    "reason": None,
    "message": "stored",
    "field": None,
    "flags": [FLAG, {"code": "x", "message": "y", "details": {}}],
    "content_hash": None,
    "missing_blobs": ["ab", 7],  # a non-text item is written as marshmallow writes it
    "original_status": None,
    "receipt": {
        "agreement_id": "a",
        "content_hash": "h",
        "received_at": "t",
        "key_id": "k",
        "signature": "s",
        "not_in_schema": "dropped",
    },
    "id_verification": None,
    "secret": "never sent",  # not a field of the schema
}


@dataclass
class Receipt:
    agreement_id: str
    content_hash: str
    received_at: str
    key_id: str
    signature: str


ODD_OUTCOMES = [
    {},  # every key missing
    {"record_id": 5, "status": True, "flags": None, "receipt": None},  # non-text in text fields
    {
        "record_id": "r",
        "flags": [],
        "missing_blobs": [],
        "receipt": Receipt("a", "b", "c", "d", "e"),
    },
    {"record_id": "r", "flags": [{"code": "c", "details": None}], "id_verification": "match"},
]


@pytest.mark.parametrize(
    "obj",
    [
        {
            "server_time": datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
            "outcomes": [OUTCOME],
            "purges_confirmed": [1, 2, True],
        },
        {
            "server_time": datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=8))),
            "outcomes": ODD_OUTCOMES,
            "purges_confirmed": [],
        },
        {"outcomes": None},
        {},
    ],
)
def test_push_answers_dump_as_marshmallow_does(obj):
    fast, slow = both(PushResultSchema(), obj)
    assert fast == slow
    assert repr(fast) == repr(slow)  # same types and key order, not only equal values


def test_pull_answers_dump_as_marshmallow_does():
    visit = {
        "id": 3,
        "status": "planned",
        "borrower": {"name": "A", "home_geo": {"lat": 1.5, "lon": 2}},
        "extra": "dropped",
    }
    obj = {
        "cursor": "c",
        "has_more": 0,
        "server_time": datetime(2026, 3, 1, tzinfo=UTC),
        "upserts": [visit, {"id": 4, "borrower": None}],
        "purges": [{"visit_id": 9, "reason": "expired", "ordered_at": "t"}],
        "outcomes": [OUTCOME, *ODD_OUTCOMES],
        "blocked": {"reason": "purge_unacknowledged", "visit_ids": [1]},
    }
    fast, slow = both(PullResultSchema(), obj)
    assert repr(fast) == repr(slow)
    assert "extra" not in fast["upserts"][0] and "secret" not in fast["outcomes"][0]


class Measures(FastDump, Schema):
    """Booleans, floats and raw values: fields whose values the compiled dump copies."""

    flag = fields.Bool()
    picky_flag = fields.Bool(truthy={"y"}, falsy={"n"})
    ratio = fields.Float()
    price = fields.Float(as_string=True)
    anything = fields.Raw()


@pytest.mark.parametrize(
    "value", [True, False, None, 0, 1, 2.5, -0.0, Decimal("1.10"), "2.5", "y", [1], {"a": 1}]
)
def test_booleans_floats_and_raw_values_dump_as_marshmallow_does(value):
    try:
        float(value)
        names = list(Measures._declared_fields)
    except (TypeError, ValueError):  # both dumps refuse it in a float field
        names = ["flag", "picky_flag", "anything"]
    obj = dict.fromkeys(names, value)
    fast, slow = both(Measures(), obj)
    assert repr(fast) == repr(slow)
    fast, slow = both(Measures(), {})
    assert fast == slow == {}


def test_many_and_objects_that_are_not_dicts():
    schema = PushResultSchema(many=True)
    objs = [{"outcomes": [OUTCOME]}, {"purges_confirmed": [3]}]
    assert repr(schema.dump(objs)) == repr(Schema.dump(schema, objs))

    @dataclass
    class Answer:
        server_time: datetime
        outcomes: list
        purges_confirmed: list

    answer = Answer(datetime(2026, 1, 1, tzinfo=UTC), [OUTCOME], [1])
    fast, slow = both(PushResultSchema(), answer)
    assert repr(fast) == repr(slow)


def test_golden_corpus_answers_dump_as_marshmallow_does(monkeypatch):
    """Every push answer of the golden corpus (one profile): both dumps, compared."""
    compared: list[int] = []
    fast_dump = FastDump.dump

    def checked(self, obj, *, many=None):
        fast = fast_dump(self, obj, many=many)
        assert repr(fast) == repr(Schema.dump(self, obj, many=many))
        compared.append(1)
        return fast

    monkeypatch.setattr(FastDump, "dump", checked)
    lines = golden_lines(("default",))
    assert len(compared) > 50 and any('"status":"flagged"' in line for line in lines)
