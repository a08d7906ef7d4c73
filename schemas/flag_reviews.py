"""Flag review: items (a flag on a stored record and its review state), their transitions,
and an agent's compliance summary."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import StrictSchema, business_date, json_int
from schemas.disclosure import borrower_fact, borrower_subject

REVIEW_STATUSES = ("open", "assigned", "resolved")
DISPOSITIONS = ("justified", "breach", "data_error")
_CODE = validate.Regexp(r"^[a-z][a-z0-9_]{0,63}$", error="a flag code: a-z, 0-9 and _")


def _not_blank(text: str) -> None:
    if not text.strip():
        raise ValidationError("must not be blank")


def _comment(required: bool) -> fields.Str:
    return fields.Str(
        required=required,
        validate=[validate.Length(min=1, max=2000), _not_blank],
        metadata={"description": "the reviewer's words; kept in the item's history"},
    )


def _version() -> fields.Int:
    return json_int(
        validate=validate.Range(min=0),
        metadata={"description": "the item's version you last saw (or If-Match); 0 if new"},
    )


class FlagReviewQueryArgsSchema(StrictSchema):
    agent_id = fields.Int()
    code = fields.Str(validate=_CODE)
    day = business_date(metadata={"description": "the visit's day"})
    status = fields.Str(validate=validate.OneOf(REVIEW_STATUSES))
    team = fields.Str(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "the agents' region"},
    )
    assignee_id = fields.Int()
    visit_id = fields.Int()
    after = fields.Int(
        load_default=0,
        validate=validate.Range(min=0, max=2**63 - 1),
        metadata={"description": "the `position` of the last item you have (next_after)"},
    )
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=500))


class FlagReviewHistorySchema(StrictSchema):
    action = fields.Str(metadata={"description": "assign | resolve | reopen"})
    from_status = fields.Str()
    to_status = fields.Str()
    assignee_id = fields.Int(allow_none=True)
    disposition = fields.Str(allow_none=True)
    comment = fields.Str(allow_none=True)
    version = fields.Int()
    acted_by = fields.Int(allow_none=True)
    acted_at = fields.Str()


class FlagReviewSchema(StrictSchema):
    """A review item: one flag code on one stored record, what it says and its review."""

    position = fields.Int(metadata={"description": "where the item sits in the list"})
    record_id = fields.Str(metadata=borrower_subject("record"))
    # What the flag says is about the borrower's visit (distance from the home, local times,
    # the case's flags), like the flags of GET /records.
    code = fields.Str(metadata=borrower_fact("flag_details"))
    message = fields.Str(allow_none=True, metadata=borrower_fact("flag_details"))
    details = fields.Dict(metadata=borrower_fact("flag_details"))
    kind = fields.Str(
        metadata={
            "description": "the record's kind, or `contact` for an entry "
            "of the contact log that staff logged or imported (record id `contact-<entry id>`)"
        }
    )
    agent_id = fields.Int(allow_none=True)
    visit_id = fields.Int(allow_none=True)
    case_id = fields.Int()
    day = fields.Str(
        metadata={"description": "the visit's day; a contact without a visit: its UTC day"}
    )
    team = fields.Str(allow_none=True)
    recorded_at = fields.Str()
    received_at = fields.Str()
    status = fields.Str(metadata={"description": "open | assigned | resolved"})
    assignee_id = fields.Int(allow_none=True)
    disposition = fields.Str(
        allow_none=True, metadata={"description": "justified | breach | data_error"}
    )
    comment = fields.Str(allow_none=True, metadata={"description": "the latest comment"})
    resolved_by = fields.Int(allow_none=True)
    resolved_at = fields.Str(allow_none=True)
    version = fields.Int()
    updated_at = fields.Str(allow_none=True)
    updated_by = fields.Int(allow_none=True)


class FlagReviewDetailSchema(FlagReviewSchema):
    history = fields.List(fields.Nested(FlagReviewHistorySchema))


class FlagReviewPageSchema(StrictSchema):
    items = fields.List(fields.Nested(FlagReviewSchema))
    next_after = fields.Int(allow_none=True)


class FlagAssignSchema(StrictSchema):
    assignee_id = json_int(required=True, metadata={"description": "an active dispatcher"})
    comment = _comment(required=False)
    version = _version()


class FlagResolveSchema(StrictSchema):
    disposition = fields.Str(required=True, validate=validate.OneOf(DISPOSITIONS))
    comment = _comment(required=True)
    version = _version()


class FlagReopenSchema(StrictSchema):
    comment = _comment(required=True)
    version = _version()


class ComplianceSummaryArgsSchema(StrictSchema):
    start = business_date(data_key="from", metadata={"description": "first visit day"})
    end = business_date(data_key="to", metadata={"description": "last visit day"})

    @validates_schema
    def _order(self, data: dict, **_kwargs: object) -> None:
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise ValidationError("'to' must not be before 'from'", "to")


class VisitFiguresSchema(StrictSchema):
    planned = fields.Int()
    completed = fields.Int()
    attempted = fields.Int()
    missed = fields.Int()
    cancelled = fields.Int()
    total = fields.Int()


class FlagFiguresSchema(StrictSchema):
    code = fields.Str()
    total = fields.Int()
    open = fields.Int()
    assigned = fields.Int()
    resolved = fields.Int()
    justified = fields.Int()
    breach = fields.Int()
    data_error = fields.Int()


class ComplianceSummarySchema(StrictSchema):
    agent_id = fields.Int()
    start = fields.Str(data_key="from")
    end = fields.Str(data_key="to")
    visits = fields.Nested(VisitFiguresSchema)
    flags = fields.List(fields.Nested(FlagFiguresSchema))
    flag_items = fields.Int()
    breaches = fields.Int(metadata={"description": "items resolved as a breach"})
    open_items = fields.Int(metadata={"description": "items open or assigned"})
