"""Reading a pushed record off the wire: schema validation, record values, raw digests.

A malformed record is answered `rejected`/`malformed` with the offending field, on its own:
the records beside it in the batch are unaffected.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import msgspec
from marshmallow import ValidationError

from schemas.common import clean_text, field_name
from schemas.sync import BODY_SCHEMAS, RecordSchema
from sync.records import MALFORMED, TYPED_ID_FIELD, IncomingRecord, RecordOutcome

_RECORD = RecordSchema()


@dataclass(frozen=True)
class CheckedRecord:
    """One raw record after validation: a record to reconcile, or a rejection."""

    sent_id: str  # the id exactly as the device sent it, echoed in the answer
    record: IncomingRecord | None = None
    typed_id: str | None = None  # typed ID characters, kept apart from the record
    rejection: RecordOutcome | None = None


def check_record(raw: Any) -> CheckedRecord:
    """Validate one raw record against the wire schema of its kind."""
    # Echoed in the answer and logged with a rejection: an id that is not text is escaped.
    sent_id = field_name(raw.get("id")) if isinstance(raw, dict) else "?"
    try:
        if not isinstance(raw, dict):
            raise ValidationError({"_record": ["must be an object"]})
        envelope = _RECORD.load(raw)
        try:
            body = BODY_SCHEMAS[envelope["kind"]].load(envelope["body"])
        except ValidationError as exc:
            raise ValidationError({"body": exc.messages}) from None
    except ValidationError as exc:
        field = _first_error(exc.messages)
        message = f"{field}: invalid ({_first_message(exc.messages)})"
        return CheckedRecord(
            sent_id, rejection=RecordOutcome(sent_id, "rejected", MALFORMED, message)
        )
    typed = body.pop(TYPED_ID_FIELD, None)
    record = IncomingRecord.create(
        id=str(envelope["id"]),
        kind=envelope["kind"],
        visit_id=envelope["visit_id"],
        device_seq=envelope["device_seq"],
        recorded_at=envelope["recorded_at"],
        body=body,
    )
    return CheckedRecord(sent_id, record=record, typed_id=typed)


def raw_digest(raw: Any) -> str | None:
    """A digest of the record as sent; none for bodies carrying typed ID characters, since
    six characters inside a stored digest could be recovered by trying them all."""
    if not isinstance(raw, dict) or not isinstance(raw.get("body"), dict):
        return None
    if not clean_text(str(raw.get("id"))):
        return None  # no stored record has such an id: nothing to replay
    if TYPED_ID_FIELD in raw["body"]:
        return None
    if plain_json(raw):
        try:
            return hashlib.sha256(_SORTED_JSON(raw)).hexdigest()
        except UnicodeEncodeError:
            pass  # a lone surrogate: the standard library spells it below
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: a lone surrogate is refused by validation, yet must not stop the digest.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# msgspec writes text, flags, None, integers, dicts and lists byte for byte as json.dumps
# does with sorted keys and no spaces; and floats too, except where Python's repr turns to
# an exponent (below 1e-4, from 1e16: "1e-05" against "0.00001", "1e+16" against "1e16").
_SORTED_JSON = msgspec.json.Encoder(order="sorted").encode


def plain_json(value: Any) -> bool:
    """True when msgspec writes `value` exactly as json.dumps(sort_keys=True) would (so a
    value of JSON's own types, which reads back from the store as itself: sync_push)."""
    kind = type(value)
    if kind is dict:
        # Leaves are tested here rather than by a call each: a visit report has a dozen.
        for key, item in value.items():
            if type(key) is not str:
                return False
            leaf = type(item)
            if leaf is str or leaf is int or leaf is bool or item is None:
                continue
            if leaf is float:
                if not (item == 0 or 1e-4 <= abs(item) < 1e16):  # False for NaN
                    return False
            elif not plain_json(item):
                return False
        return True
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return value == 0 or 1e-4 <= abs(value) < 1e16  # False for NaN
    if kind is list:
        return all(plain_json(item) for item in value)
    return False


def rejection_digest(raw: Any) -> str:
    """A digest to log a rejected record by, whatever its shape."""
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()


def _first_error(messages: Any) -> str:
    prefix = ""
    while isinstance(messages, dict) and messages:
        key, messages = next(iter(messages.items()))
        prefix = f"{prefix}.{key}" if prefix else str(key)
    return prefix


def _first_message(messages: Any) -> str:
    while isinstance(messages, dict) and messages:
        messages = next(iter(messages.values()))
    return str(messages[0]) if isinstance(messages, list) and messages else str(messages)
