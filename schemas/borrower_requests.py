"""A borrower's requests: do-not-visit, do-not-contact, preferred contact times and
out-of-hours consent, each with where it came from and who took it."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import HHMM, NestedOrNull, StrictSchema, aware_datetime, json_int
from schemas.disclosure import borrower_fact, borrower_subject
from sync.cases import (
    CONTACT_CHANNELS,
    REQUEST_CONTACT_TIMES,
    REQUEST_DO_NOT_CONTACT,
    REQUEST_KINDS,
    REQUEST_OUT_OF_HOURS_CONSENT,
    REQUEST_SOURCES,
)

# Which fields each kind takes; the rest must be left out.
_KIND_FIELDS = {
    REQUEST_DO_NOT_CONTACT: {"channel"},
    REQUEST_CONTACT_TIMES: {"window_start", "window_end", "weekdays"},
    REQUEST_OUT_OF_HOURS_CONSENT: {
        "window_start",
        "window_end",
        "valid_from",
        "valid_until",
        "evidence",
    },
}
_KIND_REQUIRES = {
    REQUEST_DO_NOT_CONTACT: ("channel",),
    REQUEST_CONTACT_TIMES: ("window_start", "window_end"),
    REQUEST_OUT_OF_HOURS_CONSENT: ("window_start", "window_end", "valid_until", "evidence"),
}
_PER_KIND = {name for names in _KIND_FIELDS.values() for name in names}


class BorrowerRequestCreateSchema(StrictSchema):
    kind = fields.Str(required=True, validate=validate.OneOf(REQUEST_KINDS))
    source = fields.Str(required=True, validate=validate.OneOf(REQUEST_SOURCES))
    taken_at = aware_datetime(metadata={"description": "when the borrower asked (default: now)"})
    visit_id = json_int(metadata={"description": "the visit it was taken at (source visit)"})
    channel = fields.Str(
        validate=validate.OneOf(CONTACT_CHANNELS), metadata={"description": "do_not_contact"}
    )
    window_start = fields.Str(
        validate=HHMM,
        metadata={"description": "preferred times, consent: borrower local time"},
    )
    window_end = fields.Str(
        validate=HHMM,
        metadata={"description": "may be earlier than window_start: the window runs past midnight"},
    )
    weekdays = fields.List(
        fields.Int(strict=True, validate=validate.Range(min=1, max=7)),
        validate=validate.Length(min=1, max=7),
        metadata={"description": "preferred times: ISO weekdays (1 Monday); default every day"},
    )
    valid_from = aware_datetime(metadata={"description": "consent: default taken_at"})
    valid_until = aware_datetime(metadata={"description": "consent: when it expires"})
    evidence = fields.Str(
        validate=validate.Length(min=1, max=500),
        metadata={"description": "consent: where the borrower's agreement is kept"},
    )
    note = fields.Str(validate=validate.Length(max=500))

    @validates_schema
    def _fits_its_kind(self, data: dict, **_kwargs: object) -> None:
        kind = data.get("kind")
        allowed = _KIND_FIELDS.get(kind, set())
        for name in sorted((_PER_KIND - allowed) & set(data)):
            raise ValidationError(f"not a field of a {kind} request", name)
        for name in _KIND_REQUIRES.get(kind, ()):
            if data.get(name) is None:
                raise ValidationError(f"required for a {kind} request", name)
        if data.get("window_start") is not None and data.get("window_start") == data.get(
            "window_end"
        ):
            raise ValidationError("the window must not be empty", "window_end")
        start = data.get("valid_from") or data.get("taken_at")
        if data.get("valid_until") and start and data["valid_until"] <= start:
            raise ValidationError("must be after valid_from (or taken_at)", "valid_until")
        if data.get("visit_id") is not None and data.get("source") != "visit":
            raise ValidationError("only for a request taken at a visit", "visit_id")


class BorrowerRequestWithdrawSchema(StrictSchema):
    source = fields.Str(required=True, validate=validate.OneOf(REQUEST_SOURCES))
    taken_at = aware_datetime(metadata={"description": "when the borrower withdrew it"})


class BorrowerRequestQueryArgsSchema(StrictSchema):
    kind = fields.Str(validate=validate.OneOf(REQUEST_KINDS))
    active = fields.Bool(load_default=False, metadata={"description": "only those in force"})


def _asked(name: str) -> dict:
    """What the borrower asked is the fact borrower_requests; handed back when the caller
    wrote that very value under the same name in the request."""
    return borrower_fact("borrower_requests", set_by=name)


class BorrowerRequestSchema(StrictSchema):
    id = fields.Int()
    borrower_id = fields.Int(metadata=borrower_subject("borrower"))
    kind = fields.Str(validate=validate.OneOf(REQUEST_KINDS), metadata=_asked("kind"))
    channel = fields.Str(allow_none=True, metadata=_asked("channel"))
    window_start = fields.Str(allow_none=True, metadata=_asked("window_start"))
    window_end = fields.Str(allow_none=True, metadata=_asked("window_end"))
    weekdays = fields.List(fields.Int(), allow_none=True, metadata=_asked("weekdays"))
    valid_from = fields.Str(allow_none=True, metadata=_asked("valid_from"))
    valid_until = fields.Str(allow_none=True, metadata=_asked("valid_until"))
    evidence = fields.Str(allow_none=True, metadata=_asked("evidence"))
    note = fields.Str(allow_none=True, metadata=_asked("note"))
    source = fields.Str()
    visit_id = fields.Int(allow_none=True)
    taken_by = fields.Int()
    taken_at = fields.Str()
    recorded_at = fields.Str()
    active = fields.Bool(metadata={"description": "in force: not withdrawn, not expired"})
    withdrawn_at = fields.Str(allow_none=True)
    withdrawal_source = fields.Str(allow_none=True)
    withdrawn_by = fields.Int(allow_none=True)
    withdrawal_recorded_at = fields.Str(allow_none=True)


class BorrowerRequestResultSchema(StrictSchema):
    request = NestedOrNull(BorrowerRequestSchema)
    cases_changed = fields.Int(metadata={"description": "cases a do-not-visit request marked"})
    visits_cancelled = fields.Int(metadata={"description": "planned visits it cancelled"})
    purges_ordered = fields.Int(metadata={"description": "cards ordered off the phones"})


class BorrowerRequestPageSchema(StrictSchema):
    items = fields.List(fields.Nested(BorrowerRequestSchema))
