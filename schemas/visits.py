"""Visits, borrower cards, days and routes."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import (
    HHMM,
    NestedOrNull,
    StrictSchema,
    aware_datetime,
    business_date,
    json_int,
)
from schemas.disclosure import borrower_fact, borrower_subject
from schemas.payments import RepaymentStatusSchema
from sync.cases import CASE_STATUSES
from sync.visits import NOTICE_KINDS, VISIT_OUTCOMES, VISIT_PURPOSES, VISIT_STATUSES


class NoticeSchema(StrictSchema):
    kind = fields.Str(required=True, validate=validate.OneOf(NOTICE_KINDS))
    given_at = aware_datetime(allow_none=True)
    note = fields.Str(allow_none=True, validate=validate.Length(max=500))


class _VisitFields(StrictSchema):
    agent_id = json_int(allow_none=True)
    window_start = fields.Str(allow_none=True, validate=HHMM)
    window_end = fields.Str(allow_none=True, validate=HHMM)
    purpose = fields.Str(validate=validate.OneOf(VISIT_PURPOSES))
    notes = fields.Str(allow_none=True, validate=validate.Length(max=2000))
    notice = NestedOrNull(NoticeSchema)

    @validates_schema
    def _window_order(self, data: dict, **_kwargs: object) -> None:
        start, end = data.get("window_start"), data.get("window_end")
        if start and end and start >= end:
            raise ValidationError("window_end must be after window_start", "window_end")


class VisitCreateSchema(_VisitFields):
    case_id = json_int(required=True)
    visit_date = business_date(required=True)
    purpose = fields.Str(load_default="home_visit", validate=validate.OneOf(VISIT_PURPOSES))


class VisitBulkCreateSchema(StrictSchema):
    visits = fields.List(
        fields.Nested(VisitCreateSchema), required=True, validate=validate.Length(min=1, max=500)
    )


class VisitPatchSchema(_VisitFields):
    version = json_int(metadata={"description": "the version you last saw (or If-Match)"})
    visit_date = business_date()


class VisitCancelSchema(StrictSchema):
    version = json_int(metadata={"description": "the version you last saw (or If-Match)"})
    reason = fields.Str(validate=validate.Length(max=500))


class GeoSchema(StrictSchema):
    lat = fields.Float()
    lon = fields.Float()


class CaseFlagsSchema(StrictSchema):
    do_not_visit = fields.Bool()
    hardship = fields.Bool()
    legal_hold = fields.Bool()
    dispute = fields.Bool()
    deceased = fields.Bool()


class BorrowerCardSchema(StrictSchema):
    """A borrower as one role may see it for one purpose. Fields outside the disclosure
    policy are absent; national ID, full phone numbers and contacts do not exist here.
    Each field is the catalogue fact of its name."""

    borrower_id = fields.Int(required=True, metadata=borrower_subject("borrower"))
    case_id = fields.Int(required=True)
    expires_at = aware_datetime(metadata={"description": "agents: drop the card at this time"})
    display_name = fields.Str(metadata=borrower_fact("display_name"))
    home_address = fields.Str(allow_none=True, metadata=borrower_fact("home_address"))
    home_geo = NestedOrNull(GeoSchema, metadata=borrower_fact("home_geo"))
    phone_masked = fields.List(fields.Str(), metadata=borrower_fact("phone_masked"))
    time_zone = fields.Str(allow_none=True, metadata=borrower_fact("time_zone"))
    date_of_birth = fields.Str(allow_none=True, metadata=borrower_fact("date_of_birth"))
    work_address = fields.Str(allow_none=True, metadata=borrower_fact("work_address"))
    employer = fields.Str(allow_none=True, metadata=borrower_fact("employer"))
    income = fields.Str(allow_none=True, metadata=borrower_fact("income"))
    product = fields.Str(metadata=borrower_fact("product"))
    overdue_amount = fields.Str(metadata=borrower_fact("overdue_amount"))
    currency = fields.Str(metadata=borrower_fact("currency"))
    days_past_due = fields.Int(metadata=borrower_fact("days_past_due"))
    last_payment_date = fields.Str(allow_none=True, metadata=borrower_fact("last_payment_date"))
    last_payment_amount = fields.Str(allow_none=True, metadata=borrower_fact("last_payment_amount"))
    case_flags = fields.Nested(CaseFlagsSchema, metadata=borrower_fact("case_flags"))
    purpose = fields.Str(allow_none=True, metadata=borrower_fact("purpose"))
    dispatcher_notes = fields.Str(allow_none=True, metadata=borrower_fact("dispatcher_notes"))
    repayment_status = NestedOrNull(
        RepaymentStatusSchema,
        metadata=borrower_fact(
            "repayment_status", description="the most pressing promise or instalment; null: none"
        ),
    )


# Staff's free text about a visit, and the request field that writes each.
_NOTES = borrower_fact("dispatcher_notes", set_by="notes")
_NOTICE_NOTE = borrower_fact("notice_note", set_by="note")
_CANCEL_REASON = borrower_fact("cancel_reason", set_by="reason")


class _VisitOutFields(StrictSchema):
    """A visit as planned. Its date, window, purpose, status and order are the work plan;
    the free text staff wrote about the visit is borrower data (see the subclasses)."""

    id = fields.Int(metadata=borrower_subject("visit"))
    case_id = fields.Int()
    case_external_id = fields.Str()
    agent_id = fields.Int(allow_none=True)
    visit_date = fields.Str()
    window_start = fields.Str(allow_none=True)
    window_end = fields.Str(allow_none=True)
    route_order = fields.Int(allow_none=True)
    purpose = fields.Str()
    status = fields.Str(validate=validate.OneOf(sorted(VISIT_STATUSES)))
    notice_kind = fields.Str(allow_none=True)
    notice_given_at = fields.Str(allow_none=True)
    version = fields.Int()
    updated_at = fields.Str()


class AgentVisitSchema(_VisitOutFields):
    borrower = NestedOrNull(BorrowerCardSchema)
    card_available_from = aware_datetime(allow_none=True)


class DispatchVisitSchema(_VisitOutFields):
    notes = fields.Str(allow_none=True, metadata=_NOTES)
    notice_note = fields.Str(allow_none=True, metadata=_NOTICE_NOTE)
    cancel_reason = fields.Str(allow_none=True, metadata=_CANCEL_REASON)
    created_at = fields.Str()
    borrower = NestedOrNull(BorrowerCardSchema)
    # What happened at the door: what re-planning works from.
    last_outcome = fields.Str(
        allow_none=True,
        validate=validate.OneOf(VISIT_OUTCOMES),
        metadata=borrower_fact(
            "visit_outcome", description="outcome of the latest report, by arrival at the door"
        ),
    )
    # The number of reports whose latest outcome is beside it (0: nobody reported yet).
    attempts = fields.Int(metadata={"description": "visit reports stored for this visit"})
    last_attempt_at = fields.Str(
        allow_none=True,
        metadata=borrower_fact("visit_outcome", description="that report's arrival"),
    )
    flags = fields.List(
        fields.Str(),
        metadata=borrower_fact(
            "flag_details", description="compliance flag codes raised on the visit's records"
        ),
    )


class PlainVisitSchema(_VisitOutFields):
    """A visit without its borrower card (dispatch write responses)."""

    notes = fields.Str(allow_none=True, metadata=_NOTES)
    notice_note = fields.Str(allow_none=True, metadata=_NOTICE_NOTE)
    cancel_reason = fields.Str(allow_none=True, metadata=_CANCEL_REASON)
    created_at = fields.Str()


class FindingSchema(StrictSchema):
    code = fields.Str()
    message = fields.Str()
    field = fields.Str(allow_none=True)


class VisitWriteResultSchema(StrictSchema):
    visit = fields.Nested(PlainVisitSchema)
    warnings = fields.List(fields.Nested(FindingSchema))


class ErrorBriefSchema(StrictSchema):
    code = fields.Str()
    message = fields.Str()
    field = fields.Str(allow_none=True)
    details = fields.Dict()


class BulkItemResultSchema(StrictSchema):
    index = fields.Int()
    status = fields.Str(metadata={"description": "created | refused"})
    visit = NestedOrNull(PlainVisitSchema)
    warnings = fields.List(fields.Nested(FindingSchema))
    error = NestedOrNull(ErrorBriefSchema)


class BulkResultSchema(StrictSchema):
    created = fields.Int()
    refused = fields.Int()
    results = fields.List(fields.Nested(BulkItemResultSchema))


class VisitQueryArgsSchema(StrictSchema):
    visit_date = business_date()
    agent_id = fields.Int()
    case_id = fields.Int()
    status = fields.Str(validate=validate.OneOf(sorted(VISIT_STATUSES)))
    after = fields.Int(load_default=0, validate=validate.Range(min=0, max=2**63 - 1))
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=500))


class ReplanQueryArgsSchema(StrictSchema):
    since = fields.Date(metadata={"description": "first visit day looked at (default: 7 days ago)"})
    until = fields.Date(metadata={"description": "last visit day looked at (default: today)"})
    agent_id = fields.Int()
    after = fields.Int(load_default=0, validate=validate.Range(min=0, max=2**63 - 1))
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=500))

    @validates_schema
    def _order(self, data: dict, **_kwargs: object) -> None:
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise ValidationError("until must not be before since", "until")


class DispatchVisitPageSchema(StrictSchema):
    items = fields.List(fields.Nested(DispatchVisitSchema))
    next_after = fields.Int(allow_none=True)


class DayQueryArgsSchema(StrictSchema):
    date = business_date(metadata={"description": "defaults to today in the agent's time zone"})


class DaySchema(StrictSchema):
    date = fields.Date()
    agent_id = fields.Int()
    generated_at = aware_datetime()
    visits = fields.List(fields.Nested(AgentVisitSchema))


class VersionedIdSchema(StrictSchema):
    id = json_int(required=True)
    version = json_int(required=True)


class DayOrderSchema(StrictSchema):
    visits = fields.List(
        fields.Nested(VersionedIdSchema), required=True, validate=validate.Length(max=200)
    )


class DayOrderResultSchema(StrictSchema):
    visits = fields.List(fields.Nested(PlainVisitSchema))


class CaseSchema(StrictSchema):
    id = fields.Int()
    external_id = fields.Str()
    status = fields.Str(validate=validate.OneOf(CASE_STATUSES))
    version = fields.Int()
    borrower = fields.Nested(BorrowerCardSchema)


class CaseQueryArgsSchema(StrictSchema):
    status = fields.Str(validate=validate.OneOf(CASE_STATUSES))
    external_id = fields.Str()
    after = fields.Int(load_default=0, validate=validate.Range(min=0, max=2**63 - 1))
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=500))


class CasePageSchema(StrictSchema):
    items = fields.List(fields.Nested(CaseSchema))
    next_after = fields.Int(allow_none=True)
