"""Building blocks shared by every schema."""

from __future__ import annotations

import re
from datetime import UTC
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import RAISE, Schema, ValidationError, fields, validate


class StrictSchema(Schema):
    """Unknown fields are an error, never silently dropped."""

    class Meta:
        unknown = RAISE


def aware_datetime(**kwargs) -> fields.AwareDateTime:
    return fields.AwareDateTime(format="iso", default_timezone=UTC, **kwargs)


def validate_time_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {name!r}") from None


HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="expected HH:MM (24h)")
DEVICE_ID = validate.Regexp(r"^[A-Za-z0-9._:-]{8,128}$", error="8-128 of A-Z a-z 0-9 . _ : -")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class ErrorDetailSchema(StrictSchema):
    code = fields.Str(required=True, metadata={"description": "stable machine-readable code"})
    message = fields.Str(required=True)
    field = fields.Str(allow_none=True, metadata={"description": "the offending field, if any"})
    details = fields.Dict()


class ErrorSchema(StrictSchema):
    error = fields.Nested(ErrorDetailSchema, required=True)
    request_id = fields.Str(allow_none=True)


class PageArgsSchema(StrictSchema):
    after = fields.Int(
        load_default=0,
        validate=validate.Range(min=0),
        metadata={"description": "return items after this position"},
    )
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=500))
