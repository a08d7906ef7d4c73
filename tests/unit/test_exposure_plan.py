"""Reading borrower-fact declarations from response schemas, and finding facts in bodies."""

from __future__ import annotations

import pytest
from marshmallow import Schema, fields

from schemas.disclosure import borrower_fact, borrower_facts_by_key, borrower_subject
from schemas.routes import RouteSchema
from schemas.sync import RecordPageSchema
from schemas.visits import CaseSchema, DayOrderResultSchema
from server.api.context import Blueprint
from server.api.exposure_plan import DeclarationError, plan_for, walk


class _Plain(Schema):
    id = fields.Int()
    name = fields.Str()


class _Card(Schema):
    borrower_id = fields.Int(metadata=borrower_subject("borrower"))
    display_name = fields.Str(metadata=borrower_fact("display_name"))
    home_address = fields.Str(allow_none=True, metadata=borrower_fact("home_address"))


class _Record(Schema):
    visit_id = fields.Int(metadata=borrower_subject("visit"))
    body = fields.Dict(
        metadata=borrower_facts_by_key("field_record", {"notes": "visit_notes", "visit_id": None})
    )
    card = fields.Nested(_Card, allow_none=True)
    flags = fields.List(fields.Nested(lambda: _Flag()))


class _Flag(Schema):
    message = fields.Str(metadata=borrower_fact("flag_details"))


class _Orphan(Schema):
    notes = fields.Str(metadata=borrower_fact("visit_notes"))


class _Unknown(Schema):
    visit_id = fields.Int(metadata=borrower_subject("visit"))
    national_id = fields.Str(metadata=borrower_fact("national_id"))


class _TwoSubjects(Schema):
    visit_id = fields.Int(metadata=borrower_subject("visit"))
    case_id = fields.Int(metadata=borrower_subject("case"))
    notes = fields.Str(metadata=borrower_fact("visit_notes"))


def test_a_schema_without_facts_has_no_plan():
    assert plan_for(_Plain) is None
    assert plan_for(None) is None
    assert plan_for("SomeRef") is None


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        (_Orphan, "without a subject"),
        (_Unknown, "not a borrower fact"),
        (_TwoSubjects, "second or unknown subject"),
    ],
)
def test_bad_declarations_fail_when_the_schema_is_planned(schema, problem):
    with pytest.raises(DeclarationError, match=problem):
        plan_for(schema)


def test_walk_finds_each_fact_with_the_nearest_subject_and_skips_empty_values():
    body = [
        {
            "visit_id": 7,
            "body": {"notes": "dog at gate", "outcome": "met_borrower", "visit_id": 7, "x": ""},
            "card": {"borrower_id": 3, "display_name": "Li Wei", "home_address": None},
            "flags": [{"message": "far from home"}, {}],
        },
        {"visit_id": 8, "body": {}, "card": None, "flags": []},
    ]
    found = {
        (item.subject_kind, item.subject_id, fact, key)
        for item in walk(plan_for(_Record), body)
        for key, fact, _ in item.places
    }
    assert found == {
        ("visit", 7, "visit_notes", "notes"),
        ("visit", 7, "field_record", "outcome"),  # a key nobody declared is still a fact
        ("borrower", 3, "display_name", "display_name"),
        ("visit", 7, "flag_details", "message"),
    }


def test_found_facts_point_at_the_place_that_removes_them():
    body = {"visit_id": 7, "body": {"notes": "dog at gate"}, "flags": []}
    (item,) = walk(plan_for(_Record), body)
    assert item.places == [("notes", "visit_notes", None)]
    item.container.pop("notes")
    assert body == {"visit_id": 7, "body": {}, "flags": []}


def test_the_real_response_schemas_declare_their_facts():
    assert plan_for(RecordPageSchema).facts_declared() >= {
        "visit_notes",
        "gps_fix",
        "agreement_terms",
        "id_result",
        "flag_details",
    }
    assert plan_for(RouteSchema).facts_declared() == {
        "route_leg_distance",
        "route_arrival",
        "route_start",
    }
    assert plan_for(DayOrderResultSchema).facts_declared() == {
        "dispatcher_notes",
        "notice_note",
        "cancel_reason",
    }
    assert "home_geo" in plan_for(CaseSchema).facts_declared()


def test_an_endpoint_serving_facts_must_say_why():
    blp = Blueprint("probe", __name__)
    with pytest.raises(DeclarationError, match="need a purpose"):
        blp.response(200, RouteSchema)(lambda: None)
    with pytest.raises(DeclarationError, match="carries no fact"):
        blp.response(200, _Plain, purpose="dispatch_planning")(lambda: None)
