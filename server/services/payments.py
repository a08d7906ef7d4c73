"""Importing payments from the bank's core system: JSON Lines or CSV, row by row."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import UTC
from typing import Any

import sqlite_utils
from marshmallow import ValidationError

from schemas.common import field_name
from schemas.payments import PaymentRowSchema, fast_load_row
from server.clock import to_iso
from server.runtime import Caller
from server.services.imports import MAX_REPORTED_ERRORS, first_error, row_chunks, write_chunks
from server.services.staff_log import log_action
from server.storage import payments as payment_rows
from server.storage.connection import transaction

CHUNK_ROWS = 2000
_ROW_SCHEMA = PaymentRowSchema()


def import_payments(
    db: sqlite_utils.Database,
    caller: Caller,
    lines: Iterable[str],
    fmt: str,
    source: str,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Validate every row, store the new payments, report the bad rows; idempotent per
    payment id (same content: unchanged; other content: refused, the first stays)."""
    counts = {"total_rows": 0, "created": 0, "unchanged": 0, "rejected": 0}
    errors: list[dict[str, Any]] = []
    write_chunks(
        row_chunks(lines, fmt, CHUNK_ROWS, progress),
        lambda chunk: _write_chunk(db, caller, chunk, counts, errors),
    )
    with transaction(db):
        log_action(db, caller, "payments_imported", "import", None, {"source": source, **counts})
    return {
        "format": fmt,
        **counts,
        "errors": errors[:MAX_REPORTED_ERRORS],
        "errors_truncated": len(errors) > MAX_REPORTED_ERRORS,
    }


def _row_error(number: int, raw: Any, field: str | None, message: str) -> dict[str, Any]:
    payment_id = raw.get("payment_id") if isinstance(raw, dict) else None
    return {
        "row": number,
        "payment_id": field_name(payment_id) if isinstance(payment_id, str) else None,
        "field": field,
        "message": message,
    }


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    """A validated row as stored: amount as two-decimal text, paid_at in UTC, its hash."""
    payment = {
        "id": row["payment_id"],
        "case_external_id": row["case_external_id"],
        "amount": format(row["amount"], "f"),
        "currency": row["currency"],
        "paid_at": to_iso(row["paid_at"].astimezone(UTC)),
        "source": row["source"],
    }
    payment["content_hash"] = hashlib.sha256(
        json.dumps(payment, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    return payment


def _write_chunk(
    db: sqlite_utils.Database,
    caller: Caller,
    chunk: list[tuple[int, dict | str]],
    counts: dict[str, int],
    errors: list[dict[str, Any]],
) -> None:
    valid: list[tuple[int, dict[str, Any]]] = []
    for number, raw in chunk:
        counts["total_rows"] += 1
        if isinstance(raw, str):
            errors.append(_row_error(number, None, None, raw))
            counts["rejected"] += 1
            continue
        try:
            valid.append((number, _normalise(fast_load_row(raw) or _ROW_SCHEMA.load(raw))))
        except ValidationError as exc:
            errors.append(_row_error(number, raw, *first_error(exc.messages)))
            counts["rejected"] += 1
    now = to_iso(caller.now)
    user_id = caller.principal.user_id if caller.principal else None
    with transaction(db):
        cases = payment_rows.cases_by_external_id(db, [p["case_external_id"] for _, p in valid])
        known = payment_rows.payment_hashes(db, [p["id"] for _, p in valid])
        new: list[dict[str, Any]] = []
        for number, payment in valid:
            problem = _refusal(payment, cases.get(payment["case_external_id"]), known)
            if problem:
                errors.append(_row_error(number, {"payment_id": payment["id"]}, *problem))
                counts["rejected"] += 1
            elif payment["id"] in known:
                counts["unchanged"] += 1
            else:
                case = cases[payment.pop("case_external_id")]
                new.append(
                    {**payment, "case_id": case["id"], "imported_at": now, "imported_by": user_id}
                )
                known[payment["id"]] = payment["content_hash"]
        payment_rows.insert_payments(db, new)
        counts["created"] += len(new)


def _refusal(
    payment: dict[str, Any], case: dict[str, Any] | None, known: dict[str, str]
) -> tuple[str, str] | None:
    """(field, message) when a well-formed row still cannot be stored."""
    if payment["id"] in known and known[payment["id"]] != payment["content_hash"]:
        return "payment_id", "already imported with other content; payments are not changed"
    if case is None:
        return "case_external_id", "no case with this external id"
    if case["currency"] != payment["currency"]:
        return "currency", f"the case is in {case['currency']}"
    return None
