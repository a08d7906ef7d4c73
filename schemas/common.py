"""Building blocks shared by every schema."""

from __future__ import annotations

import decimal
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate

from sync.canonical import MAX_AMOUNT

# Text anywhere in a request: no control characters but tab and newline (a NUL cuts strings
# short in C code and logs, escapes rewrite terminals), and no lone UTF-16 surrogate, which
# JSON can spell ("\ud800") but no UTF-8 store can hold.
_BAD_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
BAD_TEXT_MESSAGE = (
    "must not contain control characters (other than tab and newline) or lone surrogates"
)
# SQLite's INTEGER: a larger number cannot be an id, a count or a version anywhere.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
# Any date in a request (a birth date, a last payment): a calendar year the store, the clock
# arithmetic and a person reading it all handle.
_SANE_DATES = (date(1900, 1, 1), date(2100, 12, 31))
# A day that business is done on: a visit, a promise, an instalment due.
BUSINESS_DATES = (date(2000, 1, 1), date(2100, 12, 31))


def clean_text(value: str) -> bool:
    """True when the text has no control character but tab and newline, and no lone surrogate."""
    return _BAD_TEXT.search(value) is None


def field_name(key: object) -> str:
    """A key as an error may name it: bad characters escaped, so the name itself is text."""
    text = str(key)
    return text if clean_text(text) else text.encode("ascii", "backslashreplace").decode()


def _check_text(value: object) -> None:
    if isinstance(value, str) and not clean_text(value):
        raise ValidationError(BAD_TEXT_MESSAGE)


def _check_int(value: object) -> None:
    if isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:
        raise ValidationError("must be within the 64-bit integer range")


def _check_date(value: object) -> None:
    low, high = _SANE_DATES
    if isinstance(value, date) and not low <= value <= high:
        raise ValidationError(f"must be between {low.isoformat()} and {high.isoformat()}")


def _json_errors(value: object) -> Any:
    """Errors of a free-form JSON value (an object field, a field of any type), as a tree
    naming the path inside, or None: every text and key clean, every number finite and
    within 64 bits."""
    if isinstance(value, str):
        return None if clean_text(value) else [BAD_TEXT_MESSAGE]
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        return None if value == value and abs(value) != float("inf") else ["must be finite"]
    if isinstance(value, int):
        return None if _INT_MIN <= value <= _INT_MAX else ["out of range"]
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not clean_text(str(key)):
                return {field_name(key): ["field names " + BAD_TEXT_MESSAGE]}
            inner = _json_errors(item)
            if inner is not None:
                return {str(key): inner}
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            inner = _json_errors(item)
            if inner is not None:
                return {index: inner}
    return None


def _guard(field: fields.Field) -> None:
    """Give a field the check every input of its type gets."""
    if isinstance(field, fields.Nested):
        return  # its own schema is strict
    if isinstance(field, fields.List):
        _guard(field.inner)
        return
    if isinstance(field, fields.Tuple):
        for inner in field.tuple_fields:
            _guard(inner)
        return
    check = next(
        (check for kind, check in _CHECKS if isinstance(field, kind)),
        None,
    )
    if check is not None and check not in field.validators:
        # A new list: a bound field is a shallow copy sharing its declaration's list.
        field.validators = [*field.validators, check]


def _free_form(field: fields.Field) -> bool:
    return isinstance(field, fields.Dict | fields.Raw) and not isinstance(field, DeferredObject)


class DeferredObject(fields.Dict):
    """An object validated later on its own (a pushed record): not checked here, so that one
    bad item is answered by itself and does not refuse the items beside it."""


class TaggedUnion(DeferredObject):
    """A deferred object that is one of `variants`, told apart by its `tag` field. Loading
    is unchanged (each item is still validated later, on its own); the OpenAPI document
    shows `oneOf` the variants' schemas with a discriminator on `tag`, so a client knows
    how to build each kind."""

    def __init__(self, tag: str, variants: Mapping[str, type[Schema]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tag = tag
        self.variants = dict(variants)

    def deserialize(
        self, value: Any, attr: str | None = None, data: Any = None, **kwargs: Any
    ) -> Any:
        """Any JSON value, as sent: an item that is not an object at all (text, a number,
        null) is still one item, answered `malformed` on its own by the service that reads
        it, so the items beside it are not refused with it."""
        return value


# The first matching type wins (a DateTime is a Date, a UUID a String).
_CHECKS: tuple[tuple[type, Any], ...] = (
    (fields.DateTime, None),
    (fields.String, _check_text),
    (fields.Integer, _check_int),
    (fields.Date, _check_date),
)


class StrictSchema(Schema):
    """Unknown fields are an error, never silently dropped; every field refuses the values no
    input may carry (control characters and lone surrogates in text, integers beyond 64 bits,
    dates outside 1900-2100), whatever its schema says."""

    class Meta:
        unknown = RAISE

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        _guard(field_obj)

    def _free_form_keys(self) -> frozenset[str]:
        """The keys of this instance's free-form fields (fixed once the schema is built)."""
        keys = self.__dict__.get("_free_form_cache")
        if keys is None:
            keys = frozenset(
                field.data_key or name
                for name, field in self.load_fields.items()
                if _free_form(field.inner if isinstance(field, fields.List) else field)
            )
            self.__dict__["_free_form_cache"] = keys
        return keys

    @pre_load
    def _refuse_unreadable(self, data: Any, **_kwargs: object) -> Any:
        """Field names, and free-form values (objects, values of any type), checked before
        the fields are: such a value has no field type of its own to check it."""
        if not isinstance(data, Mapping):
            return data
        free_form = self._free_form_keys()
        for key in data:
            if not clean_text(str(key)):
                raise ValidationError({field_name(key): ["field names " + BAD_TEXT_MESSAGE]})
            if key in free_form:
                errors = _json_errors(data[key])
                if errors is not None:
                    raise ValidationError({key: errors})
        return data


# No phone's clock, however wrong, reads before 1900; and the store's timestamp format
# (strftime) writes years below 1000 without leading zeros, so they could not be read back.
# Nothing recorded or asked for lies beyond 2100, and arithmetic near year 9999 overflows.
_SANE_MOMENTS = validate.Range(
    min=datetime(1900, 1, 1, tzinfo=UTC),
    max=datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC),
    error="must be between 1900 and 2100",
)


def aware_datetime(**kwargs) -> fields.AwareDateTime:
    kwargs.setdefault("validate", _SANE_MOMENTS)
    return fields.AwareDateTime(format="iso", default_timezone=UTC, **kwargs)


def business_date(**kwargs) -> fields.Date:
    """A calendar day business is done on (a visit, a promise, a due date): 2000 to 2100."""
    low, high = BUSINESS_DATES
    kwargs.setdefault(
        "validate",
        validate.Range(
            min=low, max=high, error=f"must be between {low.isoformat()} and {high.isoformat()}"
        ),
    )
    return fields.Date(**kwargs)


def validate_business_day(text: str) -> None:
    """A 'YYYY-MM-DD' text field (kept as sent, e.g. for a hash) naming a business day."""
    try:
        day = date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValidationError("must be a date 'YYYY-MM-DD'") from None
    low, high = BUSINESS_DATES
    if not low <= day <= high:
        raise ValidationError(f"must be between {low.isoformat()} and {high.isoformat()}")


_CENT = decimal.Decimal("0.01")


class Money(fields.Decimal):
    """An amount of money: decimal text (or a JSON number) with at most 2 fraction digits,
    at least 0 and below 10^15; more digits are refused, never rounded away."""

    default_error_messages = {
        "scale": "must have at most 2 fraction digits",
        "range": "must be at least 0 and below 10^15",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(places=None, as_string=True, allow_nan=False, **kwargs)

    def _validated(self, value: Any) -> decimal.Decimal:
        amount = super()._validated(value)
        if not 0 <= amount < MAX_AMOUNT:
            raise self.make_error("range")
        cents = amount.quantize(_CENT)
        if cents != amount:
            raise self.make_error("scale")
        return cents


def money(**kwargs: Any) -> Money:
    """An amount of money (see Money)."""
    return Money(**kwargs)


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
