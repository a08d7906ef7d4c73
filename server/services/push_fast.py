"""The fast path of push validation: msgspec structs for records that are plainly valid.

`fast_check` answers a record only when it is sure the marshmallow schemas
(schemas/sync.py, read by push_validation.check_record) would accept it with the very same
values: same body keys in the same order, same types (aware `datetime`, `Decimal` cents,
`float`), same typed ID characters. For anything else — a msgspec error, a value needing a
check msgspec cannot state, or a form the fast path does not bother with (a UUID in capitals,
a boolean spelled "yes", an amount as a float) — it returns None and the caller asks the
marshmallow path, which alone words rejections. So rejections stay exactly as they were and
the fast path can only ever say "accepted as marshmallow would".

tests/unit/test_push_fast_validation.py feeds both paths the golden corpus and Hypothesis
records and requires identical results.
"""

from __future__ import annotations

import decimal
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from schemas.common import _SANE_DATES, BUSINESS_DATES, _json_errors, clean_text
from server.services.push_validation import CheckedRecord
from sync.canonical import MAX_AMOUNT
from sync.contacts import DIRECTIONS, FIELD_CHANNELS, check_outcome, check_promise
from sync.records import TYPED_ID_FIELD, IncomingRecord
from sync.visits import VISIT_OUTCOMES

_INT64 = (-(2**63), 2**63 - 1)
Int64 = Annotated[int, Meta(ge=_INT64[0], le=_INT64[1])]
# Anchored with \A...\Z: `$` would let a trailing newline through, which marshmallow's
# `^...$` also does; such a value is left to marshmallow rather than matched here.
Sha256 = Annotated[str, Meta(pattern=r"\A[0-9a-f]{64}\Z")]
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TYPED_ID = re.compile(r"[0-9A-Za-z]{6}")
_MOMENTS = (
    datetime(1900, 1, 1, tzinfo=UTC),
    datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC),
)
_CENT = decimal.Decimal("0.01")


class _Body(Struct, forbid_unknown_fields=True):
    """Fields in the marshmallow schema's declaration order, so the body dict matches."""


class Location(Struct, forbid_unknown_fields=True):
    lat: Annotated[float, Meta(ge=-90, le=90)]
    lon: Annotated[float, Meta(ge=-180, le=180)]
    accuracy_m: Annotated[float, Meta(ge=0, le=100_000)] = 0.0


class VisitReportBody(_Body):
    arrived_at: str
    outcome: Literal[VISIT_OUTCOMES]  # type: ignore[valid-type]
    departed_at: str | None | UnsetType = UNSET
    contacted_at: str | None | UnsetType = UNSET
    promise_amount: Any = UNSET
    promise_date: str | None | UnsetType = UNSET
    notes: Annotated[str, Meta(max_length=4000)] | None | UnsetType = UNSET
    location: Location | None | UnsetType = UNSET
    third_party_present: bool = False
    debt_discussed_with_third_party: bool = False
    attachments: Annotated[list[Sha256], Meta(max_length=20)] = []


class IdConfirmationBody(_Body):
    confirmation_kind: Literal["agent_credential", "borrower_identity"]
    id_last6: str | UnsetType = UNSET
    badge_number: Annotated[str, Meta(min_length=1, max_length=64)] | UnsetType = UNSET
    borrower_acknowledged: bool | UnsetType = UNSET
    attachments: Annotated[list[Sha256], Meta(max_length=5)] = []


class Installment(Struct, forbid_unknown_fields=True):
    due_date: str
    amount: Any


class AgreementBody(_Body):
    agreement_id: str
    case_id: Int64
    visit_id: Int64
    currency: str
    total_amount: Any
    installments: Annotated[list[Installment], Meta(min_length=1, max_length=120)]
    template_id: str
    template_version: Int64
    borrower_signature_sha256: str
    agent_signature_sha256: str
    signed_at: str
    signed_lat: Any
    signed_lon: Any
    content_hash: Sha256


class ContactBody(_Body):
    channel: Literal[FIELD_CHANNELS]  # type: ignore[valid-type]
    occurred_at: str
    outcome: Annotated[str, Meta(min_length=1, max_length=40)]
    direction: Literal[DIRECTIONS] = "outbound"  # type: ignore[valid-type]
    duration_s: Annotated[int, Meta(ge=0, le=86_400)] | None | UnsetType = UNSET
    notes: Annotated[str, Meta(max_length=2000)] | None | UnsetType = UNSET
    external_ref: Annotated[str, Meta(min_length=1, max_length=128)] | None | UnsetType = UNSET
    promise_amount: Any = UNSET
    promise_date: str | None | UnsetType = UNSET


def _envelope(kind: str, body: type[_Body]) -> type[Struct]:
    """A record of one kind: the envelope of schemas.sync.RecordSchema around its body."""
    return msgspec.defstruct(
        f"{body.__name__}Record",
        [
            ("id", str),
            ("kind", Literal[kind]),  # type: ignore[valid-type]
            ("visit_id", Annotated[int, Meta(ge=1, le=_INT64[1])]),
            ("device_seq", Annotated[int, Meta(ge=0, le=_INT64[1])]),
            ("recorded_at", str),
            ("body", body),
        ],
        forbid_unknown_fields=True,
    )


# The marshmallow field order of each body, which the dict built here follows.
_ORDER: dict[type[_Body], tuple[str, ...]] = {
    VisitReportBody: (
        "arrived_at",
        "departed_at",
        "contacted_at",
        "outcome",
        "promise_amount",
        "promise_date",
        "notes",
        "location",
        "third_party_present",
        "debt_discussed_with_third_party",
        "attachments",
    ),
    IdConfirmationBody: IdConfirmationBody.__struct_fields__,
    AgreementBody: AgreementBody.__struct_fields__,
    ContactBody: (
        "channel",
        "direction",
        "occurred_at",
        "outcome",
        "duration_s",
        "notes",
        "external_ref",
        "promise_amount",
        "promise_date",
    ),
}
_RECORDS: dict[str, type[Struct]] = {
    "visit_report": _envelope("visit_report", VisitReportBody),
    "id_confirmation": _envelope("id_confirmation", IdConfirmationBody),
    "agreement": _envelope("agreement", AgreementBody),
    "contact": _envelope("contact", ContactBody),
}
_SLOW = object()  # a value the fast path leaves to marshmallow


def fast_check(raw: Any) -> CheckedRecord | None:
    """The record as push_validation.check_record would give it, when it is plainly valid;
    None when marshmallow must decide (and word any rejection)."""
    if type(raw) is not dict or type(raw.get("kind")) is not str:
        return None
    decoder = _RECORDS.get(raw["kind"])
    if decoder is None:
        return None
    try:
        record = msgspec.convert(raw, decoder)
    except (msgspec.ValidationError, UnicodeEncodeError):
        # msgspec reads text as UTF-8: a lone surrogate in a key or a vocabulary word
        # cannot be, and marshmallow words its rejection.
        return None
    record_id = record.id  # type: ignore[attr-defined]
    recorded_at = _moment(record.recorded_at)  # type: ignore[attr-defined]
    if _CANONICAL_UUID.fullmatch(record_id) is None or recorded_at is _SLOW:
        return None
    body = _BODY_CHECKS[type(record.body)](record.body)  # type: ignore[attr-defined]
    if body is None:
        return None
    typed = body.pop(TYPED_ID_FIELD, None)
    incoming = IncomingRecord.create(
        id=record_id,
        kind=record.kind,  # type: ignore[attr-defined]
        visit_id=record.visit_id,  # type: ignore[attr-defined]
        device_seq=record.device_seq,  # type: ignore[attr-defined]
        recorded_at=recorded_at,  # type: ignore[arg-type]
        body=body,
    )
    return CheckedRecord(record_id, record=incoming, typed_id=typed)


def _fields(body: _Body) -> dict[str, Any]:
    """The body's fields that were sent or have a default, in marshmallow's order."""
    values = {}
    for name in _ORDER[type(body)]:
        value = getattr(body, name)
        if value is not UNSET:
            values[name] = value
    return values


def _visit_report(body: VisitReportBody) -> dict[str, Any] | None:
    values = _fields(body)
    for name in ("arrived_at", "departed_at", "contacted_at"):
        if values.get(name) is not None:
            values[name] = _moment(values[name])
    _promise(values)
    if body.notes and not clean_text(body.notes):
        return None
    if body.location is not None and body.location is not UNSET:
        values["location"] = {
            "lat": body.location.lat,
            "lon": body.location.lon,
            "accuracy_m": body.location.accuracy_m,
        }
    return None if _SLOW in values.values() else values


def _id_confirmation(body: IdConfirmationBody) -> dict[str, Any] | None:
    typed, badge = body.id_last6, body.badge_number
    if typed is not UNSET and _TYPED_ID.fullmatch(typed) is None:
        return None
    if badge is not UNSET and not clean_text(badge):
        return None
    if body.confirmation_kind == "borrower_identity" and typed is UNSET:
        return None
    if body.confirmation_kind == "agent_credential" and (badge is UNSET or typed is not UNSET):
        return None
    return _fields(body)


def _agreement(body: AgreementBody) -> dict[str, Any] | None:
    texts = (
        body.agreement_id,
        body.currency,
        body.template_id,
        body.borrower_signature_sha256,
        body.agent_signature_sha256,
        body.signed_at,
    )
    if not all(map(clean_text, texts)):
        return None
    for value in (body.total_amount, body.signed_lat, body.signed_lon):
        if value is None or _json_errors(value) is not None:
            return None
    installments = []
    for item in body.installments:
        if item.amount is None or _json_errors(item.amount) is not None:
            return None
        if not clean_text(item.due_date) or _business_day(item.due_date) is _SLOW:
            return None  # validate_business_day; the text itself is kept
        installments.append({"due_date": item.due_date, "amount": item.amount})
    values = _fields(body)
    values["installments"] = installments
    return values


def _contact(body: ContactBody) -> dict[str, Any] | None:
    texts = (body.outcome, body.notes, body.external_ref)
    if not all(clean_text(t) for t in texts if isinstance(t, str)):
        return None
    if check_outcome(body.channel, body.outcome):
        return None
    values = _fields(body)
    values["occurred_at"] = _moment(body.occurred_at)
    _promise(values)
    if _SLOW in values.values():
        return None
    promise = check_promise(body.outcome, values.get("promise_amount"), values.get("promise_date"))
    return None if promise else values


def _promise(values: dict[str, Any]) -> None:
    """A promise's amount as Decimal cents and its day as a date, in place."""
    if values.get("promise_amount") is not None:
        values["promise_amount"] = _money(values["promise_amount"])
    if values.get("promise_date") is not None:
        values["promise_date"] = _business_day(values["promise_date"])


_BODY_CHECKS = {
    VisitReportBody: _visit_report,
    IdConfirmationBody: _id_confirmation,
    AgreementBody: _agreement,
    ContactBody: _contact,
}


def _moment(text: str) -> Any:
    """schemas.common.aware_datetime: ISO 8601, UTC when no offset, 1900 to 2100."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return _SLOW
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        moment = moment.replace(tzinfo=UTC)
    low, high = _MOMENTS
    return moment if low <= moment <= high else _SLOW


def _business_day(text: str) -> Any:
    """schemas.common.business_date (2000 to 2100, and the 1900-2100 check of every date)."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return _SLOW
    low, high = BUSINESS_DATES
    sane_low, sane_high = _SANE_DATES
    return day if low <= day <= high and sane_low <= day <= sane_high else _SLOW


def _money(value: Any) -> Any:
    """schemas.common.Money: decimal text or a JSON number, 0 to 10^15, at most 2 places."""
    if value is True or value is False:
        return _SLOW
    try:
        amount = decimal.Decimal(str(value))
        if not amount.is_finite() or not 0 <= amount < MAX_AMOUNT:
            return _SLOW
        cents = amount.quantize(_CENT)
    except (decimal.InvalidOperation, TypeError, ValueError):
        return _SLOW
    return cents if cents == amount else _SLOW
