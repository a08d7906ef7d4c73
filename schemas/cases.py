"""Case import rows, import reports and the case views."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import StrictSchema, money, validate_time_zone

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
    status = fields.Str(load_default="open", validate=validate.OneOf(["open", "closed"]))

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
    errors = fields.List(fields.Nested(ImportErrorSchema))
    errors_truncated = fields.Bool()


class CaseImportArgsSchema(StrictSchema):
    format = fields.Str(
        validate=validate.OneOf(["jsonl", "csv"]),
        metadata={"description": "overrides the Content-Type guess"},
    )
