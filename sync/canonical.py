"""Canonical bytes and SHA-256 of agreements, and stable digests of record bodies.

The agreement form is specified for mobile teams in docs/agreement-canonical-form.md;
any change here is a new version of that document and breaks every stored hash.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import msgspec

AGREEMENT_FIELDS: tuple[str, ...] = (
    "agreement_id",
    "case_id",
    "visit_id",
    "currency",
    "total_amount",
    "installments",
    "template_id",
    "template_version",
    "borrower_signature_sha256",
    "agent_signature_sha256",
    "signed_at",
    "signed_lat",
    "signed_lon",
)

_CENT = Decimal("0.01")
_MICRODEGREE = Decimal("0.000001")
# Fifteen integer digits is beyond any consumer loan and keeps Decimal arithmetic exact.
MAX_AMOUNT = Decimal("1e15")
_AMOUNT_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")
_COORDINATE_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_CURRENCY = re.compile(r"[A-Z]{3}")
# Control characters are refused so that the only JSON escapes are \" and \\, which every
# JSON library writes the same way.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A UUID already in the form canonical_uuid gives: matched without building a uuid.UUID.
_CANONICAL_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class CanonicalFormError(ValueError):
    """A value cannot be put in canonical form; `field` names the offending field."""

    code = "malformed"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def agreement_canonical_bytes(agreement: Mapping[str, Any]) -> bytes:
    """The UTF-8 canonical JSON of an agreement; keys outside AGREEMENT_FIELDS are ignored."""
    missing = [name for name in AGREEMENT_FIELDS if agreement.get(name) is None]
    if missing:
        raise CanonicalFormError(missing[0], "is required")
    installments = agreement["installments"]
    if isinstance(installments, str | bytes | Mapping) or not isinstance(installments, Sequence):
        raise CanonicalFormError("installments", "must be a list")
    if not installments:
        raise CanonicalFormError("installments", "must not be empty")
    form = {
        "agreement_id": canonical_uuid("agreement_id", agreement["agreement_id"]),
        "case_id": canonical_positive_int("case_id", agreement["case_id"]),
        "visit_id": canonical_positive_int("visit_id", agreement["visit_id"]),
        "currency": _canonical_currency(agreement["currency"]),
        "total_amount": canonical_amount("total_amount", agreement["total_amount"]),
        "installments": [
            _canonical_installment(f"installments[{i}]", item)
            for i, item in enumerate(installments)
        ],
        "template_id": _canonical_text("template_id", agreement["template_id"]),
        "template_version": canonical_positive_int(
            "template_version", agreement["template_version"]
        ),
        "borrower_signature_sha256": canonical_sha256(
            "borrower_signature_sha256", agreement["borrower_signature_sha256"]
        ),
        "agent_signature_sha256": canonical_sha256(
            "agent_signature_sha256", agreement["agent_signature_sha256"]
        ),
        "signed_at": canonical_timestamp("signed_at", agreement["signed_at"]),
        "signed_lat": _canonical_coordinate("signed_lat", agreement["signed_lat"], 90),
        "signed_lon": _canonical_coordinate("signed_lon", agreement["signed_lon"], 180),
    }
    return _compact_json(form).encode("utf-8")


def agreement_content_hash(agreement: Mapping[str, Any]) -> str:
    """Lowercase hex SHA-256 of the agreement's canonical bytes."""
    return hashlib.sha256(agreement_canonical_bytes(agreement)).hexdigest()


def record_digest(kind: str, body: Mapping[str, Any]) -> str:
    """Stable SHA-256 over a record body, used to tell a replay from a reused id.

    Numbers of any type become normalised decimal text (10, 10.0 and Decimal("10.00")
    agree), aware datetimes become UTC, keys whose value is None are dropped (so a schema
    that starts filling a default with None does not turn old replays into conflicts).
    """
    document = {"kind": kind, "body": _digestible(body, "body")}
    return hashlib.sha256(b"doorstep-record-v1\n" + _compact_json_bytes(document)).hexdigest()


def canonical_amount(field: str, value: object) -> str:
    """A positive amount as text with exactly two fraction digits; floats are refused."""
    if isinstance(value, bool | float):
        raise CanonicalFormError(field, "must be a decimal string, not a binary float")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str) and _AMOUNT_TEXT.fullmatch(value):
        amount = Decimal(value)
    else:
        raise CanonicalFormError(field, "must be a decimal string such as '1200.50'")
    if not amount.is_finite() or amount <= 0 or amount >= MAX_AMOUNT:
        raise CanonicalFormError(field, "must be greater than 0 and below 10^15")
    cents = amount.quantize(_CENT)
    if cents != amount:
        # Rounding a signed amount silently would change what the borrower agreed to.
        raise CanonicalFormError(field, "must have at most 2 significant fraction digits")
    return format(cents, "f")


def canonical_timestamp(field: str, value: object) -> str:
    """An aware datetime (or ISO 8601 text with offset) as UTC 'YYYY-MM-DDTHH:MM:SSZ'."""
    moment = parse_aware_datetime(field, value)
    # Truncation, not rounding: the second in which it happened.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_aware_datetime(field: str, value: object) -> datetime:
    """A timezone-aware datetime from a datetime or ISO 8601 text; naive times are refused."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise CanonicalFormError(field, "must be an ISO 8601 date-time") from None
    if not isinstance(value, datetime):
        raise CanonicalFormError(field, "must be a date-time")
    if value.tzinfo is None or value.utcoffset() is None:
        raise CanonicalFormError(field, "must carry a UTC offset")
    return value


def canonical_date(field: str, value: object) -> str:
    """A calendar date as 'YYYY-MM-DD'."""
    if isinstance(value, datetime):
        raise CanonicalFormError(field, "must be a date without a time")
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise CanonicalFormError(field, "is not a valid date") from None
    if not isinstance(value, date):
        raise CanonicalFormError(field, "must be a date 'YYYY-MM-DD'")
    return value.isoformat()


def canonical_uuid(field: str, value: object) -> str:
    """A UUID as lowercase hyphenated text (UUIDs are case-insensitive; iOS writes uppercase)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and len(value) == 36:
        if _CANONICAL_UUID_TEXT.fullmatch(value):
            return value  # what str(uuid.UUID(value)) gives back, at a fraction of the cost
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise CanonicalFormError(field, "must be a hyphenated UUID")


def canonical_sha256(field: str, value: object) -> str:
    """A SHA-256 as 64 lowercase hex characters."""
    if isinstance(value, str) and _SHA256_HEX.fullmatch(value.lower()):
        return value.lower()
    raise CanonicalFormError(field, "must be a SHA-256 in 64 hex characters")


def canonical_positive_int(field: str, value: object) -> int:
    """A positive integer; booleans and numeric text are refused."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CanonicalFormError(field, "must be a positive integer")
    return value


def _canonical_currency(value: object) -> str:
    if isinstance(value, str) and _CURRENCY.fullmatch(value):
        return value
    raise CanonicalFormError("currency", "must be an ISO 4217 code in capitals, e.g. 'CNY'")


def _canonical_text(field: str, value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 128:
        raise CanonicalFormError(field, "must be text of 1 to 128 characters")
    if _CONTROL.search(value):
        raise CanonicalFormError(field, "must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalFormError(field, "must be valid Unicode text") from None
    return value


def _canonical_coordinate(field: str, value: object, limit: int) -> str:
    if isinstance(value, bool):
        raise CanonicalFormError(field, "must be a number")
    if isinstance(value, float):
        # repr() is the shortest text that reads back as the same double, i.e. what the
        # device wrote in its JSON; rounding that text is reproducible in any language.
        number = Decimal(repr(value))
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str) and _COORDINATE_TEXT.fullmatch(value):
        number = Decimal(value)
    else:
        raise CanonicalFormError(field, "must be a decimal number")
    if not number.is_finite() or abs(number) > limit:
        raise CanonicalFormError(field, f"must be within [-{limit}, {limit}]")
    rounded = number.quantize(_MICRODEGREE, rounding=ROUND_HALF_EVEN)
    return format(rounded.copy_abs() if rounded.is_zero() else rounded, "f")


def _canonical_installment(field: str, item: object) -> dict[str, str]:
    if not isinstance(item, Mapping):
        raise CanonicalFormError(field, "must be an object with due_date and amount")
    for name in ("due_date", "amount"):
        if item.get(name) is None:
            raise CanonicalFormError(f"{field}.{name}", "is required")
    return {
        "due_date": canonical_date(f"{field}.due_date", item["due_date"]),
        "amount": canonical_amount(f"{field}.amount", item["amount"]),
    }


_SORTED_JSON = msgspec.json.Encoder(order="sorted").encode


def _compact_json_bytes(document: object) -> bytes:
    """_compact_json(document) as UTF-8, for a document of text, flags, None, dicts and
    lists only (what _digestible returns): msgspec writes those exactly as json.dumps does
    (keys sorted by code point, the same escapes, UTF-8 as is); anything it refuses, such as
    a lone surrogate, is left to json.dumps, which decides as before."""
    try:
        return _SORTED_JSON(document)
    except (TypeError, UnicodeEncodeError, msgspec.MsgspecError):
        return _compact_json(document).encode("utf-8")


def _compact_json(document: object) -> str:
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _digestible(value: object, path: str) -> object:
    """The value with every type JSON lacks turned into stable text.

    Hot path of every push: the exact types a decoded record holds (text, flags, ints,
    floats, UTC datetimes, dicts of them) are converted inline, and the path of a nested
    value is only spelled out when there is a container to descend into or an error to
    report; anything else goes to _digestible_general, which gives the same text."""
    kind = type(value)
    if value is None or kind is str or kind is bool:
        return value
    if kind is not dict:
        return _digestible_general(value, path)
    result: dict[str, object] = {}
    for key, item in value.items():
        if type(key) is not str:
            return _digestible_general(value, path)
        item_kind = type(item)
        if item_kind is str or item_kind is bool:
            result[key] = item
        elif item is None:
            continue
        elif item_kind is int:
            result[key] = str(item)
        elif item_kind is float and (text := _plain_float_text(item)) is not None:
            result[key] = text
        elif item_kind is datetime and item.tzinfo is UTC:
            result[key] = _utc_text(item)
        elif item_kind is list and not item:
            result[key] = []  # a body's empty attachments, in nearly every record
        else:
            result[key] = _digestible(item, path and f"{path}.{key}")
    return result


def _utc_text(moment: datetime) -> str:
    """moment.isoformat() with 'Z' for '+00:00', for a UTC datetime: whole seconds (what
    phones send) spelled directly, which is several times cheaper than isoformat."""
    if moment.microsecond:
        return moment.isoformat().replace("+00:00", "Z")
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (  # noqa: UP031 (measured faster than format)
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
    )


def _plain_float_text(value: float) -> str | None:
    """_decimal_text of a float whose repr has no exponent; None for any other float."""
    text = repr(value)
    if "e" in text or "n" in text:  # exponent, nan, inf
        return None
    if value == 0:
        return "0"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _digestible_general(value: object, path: str) -> object:
    """The value with every type JSON lacks turned into stable text (any value)."""
    kind = type(value)
    if value is None or kind is str or kind is bool:
        return value
    if isinstance(value, int | float | Decimal):
        return _decimal_text(value, path)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return value.isoformat()
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path}: keys must be text, got {key!r}")
            if item is not None:
                result[key] = _digestible(item, path and f"{path}.{key}")
        return result
    if isinstance(value, list | tuple):
        return [_digestible(item, path and f"{path}[{i}]") for i, item in enumerate(value)]
    raise TypeError(f"{path}: cannot digest a value of type {type(value).__name__}")


def _decimal_text(value: int | float | Decimal, path: str) -> str:
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{path}: not a number") from None
    if not number.is_finite():
        raise ValueError(f"{path}: NaN and infinity cannot be digested")
    if number.is_zero():
        return "0"
    # format() is exact at any size, unlike normalize(), which rounds to 28 digits.
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
