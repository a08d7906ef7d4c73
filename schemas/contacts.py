"""The contact log and the case timeline: logging a contact, importing a dialer's export,
reading a case's log and its collections ladder."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import (
    NestedOrNull,
    StrictSchema,
    aware_datetime,
    business_date,
    clean_text,
    json_int,
    money,
)
from schemas.disclosure import borrower_fact, borrower_subject
from sync.contacts import (
    CHANNELS,
    DIRECTIONS,
    LOGGED_CHANNELS,
    OUTCOMES,
    RUNGS,
    check_outcome,
    check_promise,
)


def _logged(name: str) -> dict:
    """A fact of the log; handed back, not disclosed, when this request wrote that value."""
    return borrower_fact("contact_log", set_by=name)


class _OutcomeOfChannel:
    @validates_schema
    def _outcome_of_channel(self, data: dict, **_kwargs: object) -> None:
        problem = check_outcome(data["channel"], data["outcome"])
        if problem:
            raise ValidationError(problem, "outcome")


class _PromiseOfOutcome:
    @validates_schema
    def _promise_of_outcome(self, data: dict, **_kwargs: object) -> None:
        problem = check_promise(
            data["outcome"], data.get("promise_amount"), data.get("promise_date")
        )
        if problem:
            raise ValidationError(problem[1], problem[0])


def promise_amount() -> fields.Field:
    """A promise's amount (with `promise_date`, on a contact whose outcome is `promise`)."""
    return money(allow_none=True, metadata={"description": "with promise_date, outcome promise"})


def promise_date() -> fields.Field:
    """The day a promise falls due."""
    return business_date(allow_none=True, metadata={"description": "the day it falls due"})


class ContactCreateSchema(_OutcomeOfChannel, _PromiseOfOutcome, StrictSchema):
    channel = fields.Str(required=True, validate=validate.OneOf(LOGGED_CHANNELS))
    direction = fields.Str(load_default="outbound", validate=validate.OneOf(DIRECTIONS))
    occurred_at = aware_datetime(required=True, metadata={"description": "call start, sent at"})
    outcome = fields.Str(
        required=True,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "from the channel's vocabulary (docs/contacts.md)"},
    )
    agent_id = json_int(
        validate=validate.Range(min=1),
        metadata={"description": "the user who made the contact (default: you)"},
    )
    duration_s = json_int(allow_none=True, validate=validate.Range(min=0, max=86_400))
    notes = fields.Str(allow_none=True, validate=validate.Length(max=2000))
    promise_amount = promise_amount()
    promise_date = promise_date()
    visit_id = json_int(allow_none=True, validate=validate.Range(min=1))
    external_ref = fields.Str(
        allow_none=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "the dialer's or gateway's id of this contact"},
    )


class ContactImportRowSchema(_OutcomeOfChannel, _PromiseOfOutcome, StrictSchema):
    """One row of a dialer or SMS gateway export (CSV cells or a JSON Lines object); a call
    whose outcome is `promise` may carry the promise (amount and due day)."""

    case_external_id = fields.Str(required=True, validate=validate.Length(min=1, max=64))
    channel = fields.Str(required=True, validate=validate.OneOf(LOGGED_CHANNELS))
    direction = fields.Str(load_default="outbound", validate=validate.OneOf(DIRECTIONS))
    occurred_at = aware_datetime(required=True)
    outcome = fields.Str(required=True, validate=validate.Length(min=1, max=40))
    agent = fields.Str(
        required=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "a Doorstep username, or the external system's agent name"},
    )
    duration_s = fields.Int(allow_none=True, validate=validate.Range(min=0, max=86_400))
    notes = fields.Str(allow_none=True, validate=validate.Length(max=2000))
    external_ref = fields.Str(allow_none=True, validate=validate.Length(min=1, max=128))
    promise_amount = promise_amount()
    promise_date = promise_date()


# Text fields of an import row: (shortest, longest) as ContactImportRowSchema allows them.
_ROW_TEXTS = {
    "case_external_id": (1, 64),
    "agent": (1, 128),
    "outcome": (1, 40),
    "notes": (0, 2000),
    "external_ref": (1, 128),
}
_ROW_NULLABLE = frozenset({"duration_s", "notes", "external_ref"})
_ROW_REQUIRED = frozenset({"case_external_id", "channel", "occurred_at", "outcome", "agent"})
_ROW_FIELDS = _ROW_REQUIRED | {"direction"} | _ROW_NULLABLE
_ROW_CHANNELS = frozenset(LOGGED_CHANNELS)
_ROW_DIRECTIONS = frozenset(DIRECTIONS)
_ROW_MOMENT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_ROW_MOMENTS = (datetime(1900, 1, 1, tzinfo=UTC), datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC))
_ROW_DURATION = re.compile(r"[0-9]{1,5}")
_MAX_DURATION = 86_400


def fast_load_contact_row(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """The row exactly as ContactImportRowSchema loads it, when it is plainly well formed:
    known fields only, clean text of the allowed lengths, a channel and its outcome, an
    ISO 8601 time with an offset, a duration as a whole number. None: anything else, which
    the schema then decides (and explains). A large import spends most of its time in the
    schema otherwise; tests/unit/test_contact_rows.py holds the two to the same answers."""
    if not _ROW_REQUIRED <= raw.keys() <= _ROW_FIELDS:
        return None
    row: dict[str, Any] = {"direction": "outbound"}
    for name, value in raw.items():
        if value is None and name in _ROW_NULLABLE:
            row[name] = None
        elif name in _ROW_TEXTS:
            low, high = _ROW_TEXTS[name]
            if type(value) is not str or not low <= len(value) <= high or not clean_text(value):
                return None
            row[name] = value
        elif name == "duration_s":
            if type(value) is str and _ROW_DURATION.fullmatch(value):
                value = int(value)
            if type(value) is not int or not 0 <= value <= _MAX_DURATION:
                return None
            row[name] = value
        elif name == "occurred_at":
            if type(value) is not str or not _ROW_MOMENT.fullmatch(value):
                return None
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                return None
            if not _ROW_MOMENTS[0] <= moment <= _ROW_MOMENTS[1]:
                return None
            row[name] = moment
        elif name == "channel":
            if type(value) is not str or value not in _ROW_CHANNELS:
                return None
            row[name] = value
        else:  # direction
            if type(value) is not str or value not in _ROW_DIRECTIONS:
                return None
            row[name] = value
    if row["outcome"] not in OUTCOMES[row["channel"]]:
        return None
    return row


class ContactImportArgsSchema(StrictSchema):
    format = fields.Str(
        validate=validate.OneOf(["jsonl", "csv"]),
        metadata={"description": "overrides the Content-Type guess"},
    )


class ContactImportErrorSchema(StrictSchema):
    row = fields.Int()
    field = fields.Str(allow_none=True)
    message = fields.Str()


class ContactImportReportSchema(StrictSchema):
    format = fields.Str()
    source = fields.Str()
    total_rows = fields.Int()
    created = fields.Int()
    flagged = fields.Int(metadata={"description": "new entries that broke a channel rule"})
    already_logged = fields.Int(
        metadata={"description": "rows whose contact was on the log already, from any source"}
    )
    rejected = fields.Int()
    errors = fields.List(fields.Nested(ContactImportErrorSchema))
    errors_truncated = fields.Bool()


class ContactQueryArgsSchema(StrictSchema):
    channel = fields.Str(validate=validate.OneOf(CHANNELS))


class ContactSchema(StrictSchema):
    id = fields.Int(allow_none=True, metadata={"description": "null for a home-visit report"})
    case_id = fields.Int(metadata=borrower_subject("case"))
    channel = fields.Str(metadata=_logged("channel"))
    direction = fields.Str(metadata=_logged("direction"))
    occurred_at = fields.Str(metadata=_logged("occurred_at"))
    outcome = fields.Str(metadata=_logged("outcome"))
    duration_s = fields.Int(allow_none=True, metadata=_logged("duration_s"))
    notes = fields.Str(allow_none=True, metadata=borrower_fact("contact_notes", set_by="notes"))
    agent_id = fields.Int(allow_none=True)
    agent_username = fields.Str(allow_none=True)
    agent_name = fields.Str(allow_none=True, metadata={"description": "an external agent"})
    visit_id = fields.Int(allow_none=True)
    external_ref = fields.Str(allow_none=True)
    source = fields.Str(metadata={"description": "api, import, sync or visit_report"})
    sources = fields.List(fields.Str(), metadata={"description": "every source that reported it"})
    record_id = fields.Str(allow_none=True, metadata={"description": "the visit report's id"})
    flags = fields.List(fields.Dict(), metadata=borrower_fact("flag_details"))
    logged_at = fields.Str(allow_none=True)


class ContactPlanSchema(StrictSchema):
    channel = fields.Str(required=True, validate=validate.OneOf(CHANNELS))
    at = aware_datetime(metadata={"description": "when the contact would be made (default: now)"})


class ContactPlanResultSchema(StrictSchema):
    case_id = fields.Int()
    channel = fields.Str()
    at = fields.Str()
    lawful = fields.Bool()


class ContactResultSchema(StrictSchema):
    contact = NestedOrNull(ContactSchema)


class ContactPageSchema(StrictSchema):
    items = fields.List(fields.Nested(ContactSchema))


class LadderRungSchema(StrictSchema):
    rung = fields.Str(validate=validate.OneOf(RUNGS))
    channels = fields.List(fields.Str())
    contacts = fields.Int(metadata=borrower_fact("contact_log"))
    first_at = fields.Str(allow_none=True, metadata=borrower_fact("contact_log"))
    last_at = fields.Str(allow_none=True, metadata=borrower_fact("contact_log"))
    last_outcome = fields.Str(allow_none=True, metadata=borrower_fact("contact_log"))
    outcomes = fields.Dict(
        keys=fields.Str(), values=fields.Int(), metadata=borrower_fact("contact_log")
    )
    entries = fields.List(fields.Nested(ContactSchema))


class LadderNextActionSchema(StrictSchema):
    rung = fields.Str(allow_none=True, metadata=borrower_fact("contact_log"))
    channel = fields.Str(allow_none=True, metadata=borrower_fact("contact_log"))
    earliest_at = fields.Str(allow_none=True, metadata=borrower_fact("contact_log"))
    reason = fields.Str(
        metadata={
            "description": "next_rung, notice_before_visit, awaiting_promise, "
            "no_lawful_channel, in_legal, case_closed",
            **borrower_fact("contact_log"),
        }
    )
    awaiting_until = fields.Str(
        allow_none=True,
        metadata={
            "description": "while a promise or instalment is pending: the end of its grace "
            "period; rung and channel are the step to take if it breaks",
            **borrower_fact("promise_to_pay"),
        },
    )


class TimelineSchema(StrictSchema):
    case_id = fields.Int(metadata=borrower_subject("case"))
    current_rung = fields.Str(allow_none=True, metadata=borrower_fact("contact_log"))
    on_rung_since = fields.Str(allow_none=True, metadata=borrower_fact("contact_log"))
    time_on_rung_s = fields.Int(allow_none=True, metadata=borrower_fact("contact_log"))
    blocked_channels = fields.List(
        fields.Str(),
        metadata={
            "description": "channels the borrower asked not to be contacted on",
            **borrower_fact("borrower_requests"),
        },
    )
    next_action = fields.Nested(LadderNextActionSchema)
    rungs = fields.List(fields.Nested(LadderRungSchema))
