"""Building blocks shared by every schema."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import RAISE, Schema, ValidationError, fields, validate


class StrictSchema(Schema):
    """Unknown fields are an error, never silently dropped."""

    class Meta:
        unknown = RAISE


# No phone's clock, however wrong, reads before 1900; and the store's timestamp format
# (strftime) writes years below 1000 without leading zeros, so they could not be read back.
# The upper bound keeps conversion to UTC from overflowing.
_SANE_MOMENTS = validate.Range(
    min=datetime(1900, 1, 1, tzinfo=UTC),
    max=datetime(9999, 1, 1, tzinfo=UTC),
    error="must be between 1900 and 9998",
)


def aware_datetime(**kwargs) -> fields.AwareDateTime:
    kwargs.setdefault("validate", _SANE_MOMENTS)
    return fields.AwareDateTime(format="iso", default_timezone=UTC, **kwargs)


class NestedOrNull(fields.Nested):
    """A nested object, or null. Null is let through here rather than by `allow_none`,
    because apispec spells a nullable Nested for OpenAPI 3.0 as `anyOf: [{type: object,
    nullable: true}, $ref]`, which admits any object at all and so documents (and checks)
    nothing; this one is documented as `nullable: true, allOf: [$ref]`."""

    def __init__(self, nested, **kwargs) -> None:
        kwargs["metadata"] = {"nullable": True, **kwargs.get("metadata", {})}
        super().__init__(nested, **kwargs)

    def deserialize(self, value, attr=None, data=None, **kwargs):
        if value is None:
            return None
        return super().deserialize(value, attr, data, **kwargs)


def json_int(**kwargs) -> fields.Int:
    """An integer in a JSON body: 2.5 or "2" is refused, never truncated into another id."""
    return fields.Int(strict=True, **kwargs)


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
