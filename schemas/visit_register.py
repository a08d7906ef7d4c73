"""The visit register: its filters and its lines (one per visit attempt)."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import StrictSchema, aware_datetime, business_date
from schemas.disclosure import borrower_fact, borrower_subject
from server.domain.visit_register import ATTEMPTS
from sync.visits import VISIT_OUTCOMES, VISIT_PURPOSES, VISIT_STATUSES

FORMATS = ("json", "csv", "html")
# The longest range of days one request may ask for.
MAX_RANGE_DAYS = 92
_OUTCOME = borrower_fact("visit_outcome")
_FIX = borrower_fact("gps_fix")
_LOCAL = borrower_fact("visit_outcome", description="HH:MM in the borrower's time zone")


class RegisterQueryArgsSchema(StrictSchema):
    day = business_date(metadata={"description": "one day (same as since = until = day)"})
    since = business_date(metadata={"description": "first visit day"})
    until = business_date(metadata={"description": "last visit day"})
    agent_id = fields.Int()
    team = fields.Str(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "visits assigned to agents of this team (their region)"},
    )
    case_id = fields.Int()
    format = fields.Str(
        load_default="json",
        validate=validate.OneOf(FORMATS),
        metadata={"description": "json, csv (a spreadsheet-safe file) or html (printable)"},
    )
    after = fields.Int(load_default=0, validate=validate.Range(min=0, max=2**63 - 1))
    limit = fields.Int(
        load_default=200,
        validate=validate.Range(min=1, max=1000),
        metadata={"description": "visits per page (a visit may give several lines)"},
    )

    @validates_schema
    def _scoped(self, data: dict, **_kwargs: object) -> None:
        if not any(data.get(k) is not None for k in ("day", "since", "until", "agent_id")) and (
            data.get("team") is None and data.get("case_id") is None
        ):
            raise ValidationError(
                "give at least one of day, since/until, agent_id, team, case_id", "day"
            )
        if data.get("day") is not None and (data.get("since") or data.get("until")):
            raise ValidationError("give day or since/until, not both", "day")
        since, until = data.get("since"), data.get("until")
        if since and until:
            if since > until:
                raise ValidationError("until must not be before since", "until")
            if (until - since).days >= MAX_RANGE_DAYS:
                raise ValidationError(f"at most {MAX_RANGE_DAYS} days at once", "until")


class RegisterFlagSchema(StrictSchema):
    record_id = fields.Str()
    code = fields.Str()
    review_status = fields.Str(allow_none=True)
    review_disposition = fields.Str(allow_none=True)


class RegisterLineSchema(StrictSchema):
    """One visit attempt; a visit with no report is one line with attempt not_attempted,
    missed or cancelled and no attempt fields."""

    visit_id = fields.Int(metadata=borrower_subject("visit"))
    visit_date = fields.Str()
    agent_id = fields.Int(allow_none=True)
    agent_name = fields.Str(allow_none=True)
    team = fields.Str(allow_none=True, metadata={"description": "the agent's team (region)"})
    case_id = fields.Int()
    case_external_id = fields.Str()
    borrower_name = fields.Str(metadata=borrower_fact("display_name"))
    method = fields.Str(
        validate=validate.OneOf(VISIT_PURPOSES), metadata={"description": "the visit's purpose"}
    )
    planned_window_start = fields.Str(allow_none=True)
    planned_window_end = fields.Str(allow_none=True)
    visit_status = fields.Str(validate=validate.OneOf(sorted(VISIT_STATUSES)))
    attempt = fields.Str(validate=validate.OneOf(ATTEMPTS))
    record_id = fields.Str(allow_none=True, metadata={"description": "the visit report"})
    arrived_at = fields.Str(allow_none=True, metadata=_OUTCOME)
    contacted_at = fields.Str(allow_none=True, metadata=_OUTCOME)
    departed_at = fields.Str(allow_none=True, metadata=_OUTCOME)
    arrived_local = fields.Str(allow_none=True, metadata=_LOCAL)
    contacted_local = fields.Str(allow_none=True, metadata=_LOCAL)
    departed_local = fields.Str(allow_none=True, metadata=_LOCAL)
    outcome = fields.Str(
        allow_none=True, validate=validate.OneOf(VISIT_OUTCOMES), metadata=_OUTCOME
    )
    reported_lat = fields.Float(allow_none=True, metadata=_FIX)
    reported_lon = fields.Float(allow_none=True, metadata=_FIX)
    accuracy_m = fields.Float(allow_none=True, metadata=_FIX)
    distance_from_home_m = fields.Float(
        allow_none=True,
        metadata=borrower_fact("gps_fix", description="from the reported position to the home"),
    )
    badge_shown_before_contact = fields.Bool(
        allow_none=True,
        metadata=borrower_fact(
            "visit_outcome", description="null when nobody was met (no contact to precede)"
        ),
    )
    identity_result = fields.Str(
        allow_none=True,
        metadata=borrower_fact(
            "id_result",
            description="match | mismatch | unverifiable | limit_reached | not_compared; "
            "null: no ID check. Never the number or the characters typed",
        ),
    )
    third_party_present = fields.Bool(allow_none=True, metadata=_OUTCOME)
    debt_discussed_with_third_party = fields.Bool(allow_none=True, metadata=_OUTCOME)
    flags = fields.List(
        fields.Nested(RegisterFlagSchema),
        metadata=borrower_fact(
            "flag_details", description="flags on the attempt's records, with review state"
        ),
    )


class RegisterPageSchema(StrictSchema):
    filters = fields.Dict(metadata={"description": "the filters applied"})
    generated_at = aware_datetime()
    items = fields.List(fields.Nested(RegisterLineSchema))
    next_after = fields.Int(allow_none=True)
