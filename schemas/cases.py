"""Case import rows, import reports and the case views."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import NestedOrNull, StrictSchema, json_int, money, validate_time_zone
from schemas.disclosure import borrower_fact, borrower_subject
from schemas.visits import CaseFlagsSchema, ErrorBriefSchema
from sync.cases import CASE_STATUSES

# The one status of old feeds, before a case said how it ended: read as closed_paid.
LEGACY_CLOSED = "closed"

_EXTERNAL_ID = validate.Regexp(r"^[A-Za-z0-9._:/-]{1,64}$", error="1-64 of A-Z a-z 0-9 . _ : / -")
_PHONE = validate.Regexp(r"^\+?[0-9]{6,20}$", error="6-20 digits, optional leading +")


class ContactSchema(StrictSchema):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    relation = fields.Str(validate=validate.Length(max=100))
    phone = fields.Str(validate=_PHONE)


class CaseRowSchema(StrictSchema):
    """One row of a case import (JSON Lines object or CSV row)."""

    case_external_id = fields.Str(required=True, validate=_EXTERNAL_ID)
    borrower_external_id = fields.Str(required=True, validate=_EXTERNAL_ID)
    full_name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    national_id = fields.Str(allow_none=True, validate=validate.Regexp(r"^[0-9A-Za-z]{4,32}$"))
    phones = fields.List(
        fields.Str(validate=_PHONE), load_default=list, validate=validate.Length(max=5)
    )
    home_address = fields.Str(allow_none=True, validate=validate.Length(max=500))
    home_lat = fields.Float(allow_none=True, validate=validate.Range(min=-90, max=90))
    home_lon = fields.Float(allow_none=True, validate=validate.Range(min=-180, max=180))
    work_address = fields.Str(allow_none=True, validate=validate.Length(max=500))
    employer = fields.Str(allow_none=True, validate=validate.Length(max=200))
    date_of_birth = fields.Date(allow_none=True)
    contacts = fields.List(
        fields.Nested(ContactSchema), load_default=list, validate=validate.Length(max=10)
    )
    income = money(allow_none=True)
    time_zone = fields.Str(allow_none=True, validate=validate_time_zone)
    product = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    overdue_amount = money(required=True)
    currency = fields.Str(required=True, validate=validate.Regexp(r"^[A-Z]{3}$"))
    days_past_due = fields.Int(
        required=True, strict=False, validate=validate.Range(min=0, max=36500)
    )
    last_payment_date = fields.Date(allow_none=True)
    last_payment_amount = money(allow_none=True)
    hardship = fields.Bool(load_default=False)
    do_not_visit = fields.Bool(load_default=False)
    legal_hold = fields.Bool(load_default=False)
    # Newer flags: a row without them leaves the case's value as it is.
    dispute = fields.Bool()
    deceased = fields.Bool()
    status = fields.Str(
        load_default="open", validate=validate.OneOf([*CASE_STATUSES, LEGACY_CLOSED])
    )

    @validates_schema
    def _geo_pair(self, data: dict, **_kwargs: object) -> None:
        if (data.get("home_lat") is None) != (data.get("home_lon") is None):
            raise ValidationError("home_lat and home_lon go together", "home_lon")


class ImportErrorSchema(StrictSchema):
    row = fields.Int(
        required=True, metadata={"description": "1-based data row (CSV header excluded)"}
    )
    case_external_id = fields.Str(allow_none=True)
    field = fields.Str(allow_none=True)
    message = fields.Str(required=True)


class ImportReportSchema(StrictSchema):
    import_id = fields.Int()
    format = fields.Str()
    total_rows = fields.Int()
    created = fields.Int()
    updated = fields.Int()
    unchanged = fields.Int()
    rejected = fields.Int()
    visits_cancelled = fields.Int(
        metadata={"description": "planned visits of cases the import closed to visits"}
    )
    purges_ordered = fields.Int(
        metadata={"description": "cards of those cases ordered off the devices holding them"}
    )
    errors = fields.List(fields.Nested(ImportErrorSchema))
    errors_truncated = fields.Bool()


class CaseImportArgsSchema(StrictSchema):
    format = fields.Str(
        validate=validate.OneOf(["jsonl", "csv"]),
        metadata={"description": "overrides the Content-Type guess"},
    )


class JsonBool(fields.Boolean):
    """true or false in a JSON body; 0, 1 or "yes" are refused, not read as a flag."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class CaseFlagChangesSchema(StrictSchema):
    """The flags to set (true) or lift (false); a flag left out keeps its value."""

    do_not_visit = JsonBool()
    hardship = JsonBool()
    legal_hold = JsonBool()
    dispute = JsonBool()
    deceased = JsonBool()


class CasePatchSchema(StrictSchema):
    version = json_int(metadata={"description": "the case version you last saw (or If-Match)"})
    status = fields.Str(validate=validate.OneOf(CASE_STATUSES))
    flags = fields.Nested(CaseFlagChangesSchema)
    reason = fields.Str(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "why; kept in the case history, not in the staff log"},
    )

    @validates_schema
    def _something(self, data: dict, **_kwargs: object) -> None:
        if "status" not in data and not data.get("flags"):
            raise ValidationError("change the status, a flag, or both", "status")


class CaseBulkItemSchema(CasePatchSchema):
    case_id = json_int(required=True)
    version = json_int(required=True, metadata={"description": "the case version you last saw"})


class CaseBulkChangeSchema(StrictSchema):
    changes = fields.List(
        fields.Nested(CaseBulkItemSchema), required=True, validate=validate.Length(min=1, max=1000)
    )


# The case's flags, and what a change says of them, are the card fact case_flags: sent to
# readers whose policy gives it (dispatchers), left out for others (admins).
class CaseStateSchema(StrictSchema):
    id = fields.Int(metadata=borrower_subject("case"))
    external_id = fields.Str()
    status = fields.Str(validate=validate.OneOf(CASE_STATUSES))
    closed_at = fields.Str(allow_none=True)
    version = fields.Int()
    flags = fields.Nested(
        CaseFlagsSchema,
        metadata=borrower_fact(
            "case_flags", description="present when the disclosure policy gives you case flags"
        ),
    )


class _ChangeEffectsSchema(StrictSchema):
    case_id = fields.Int(metadata=borrower_subject("case"))
    changed = fields.List(
        fields.Str(),
        metadata=borrower_fact("case_flags", description="status, flags.<name>"),
    )
    stops_visits = fields.List(
        fields.Str(),
        metadata=borrower_fact(
            "case_flags", description="the rules by which the case now takes no visits, if any"
        ),
    )
    visits_cancelled = fields.Int(metadata={"description": "its planned visits, cancelled"})
    purges_ordered = fields.Int(
        metadata={"description": "its cards ordered off the devices that hold them"}
    )


class CaseChangeResultSchema(_ChangeEffectsSchema):
    case = fields.Nested(CaseStateSchema)


class CaseBulkItemResultSchema(_ChangeEffectsSchema):
    index = fields.Int()
    status = fields.Str(metadata={"description": "changed | unchanged | refused"})
    case = NestedOrNull(CaseStateSchema)
    error = NestedOrNull(ErrorBriefSchema)


class CaseBulkResultSchema(StrictSchema):
    changed = fields.Int()
    refused = fields.Int()
    visits_cancelled = fields.Int()
    purges_ordered = fields.Int()
    results = fields.List(fields.Nested(CaseBulkItemResultSchema))
