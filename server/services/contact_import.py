"""Importing contacts from a dialer or an SMS gateway export: JSON Lines or CSV, in chunks,
idempotent (a row already on the log, from any source, adds nothing but its source)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sqlite_utils
from marshmallow import ValidationError

from schemas.common import field_name
from schemas.contacts import ContactImportRowSchema, fast_load_contact_row
from server.runtime import Caller, Runtime
from server.services.contact_compliance import CallMemo, contact_flags
from server.services.contacts import (
    CLOCK_TOLERANCE,
    SOURCE_IMPORT,
    Candidate,
    place_contacts,
    record_promises,
    write_contacts,
)
from server.services.imports import MAX_REPORTED_ERRORS, row_chunks, write_chunks
from server.services.staff_log import log_action
from server.storage import contacts as contact_rows
from server.storage.connection import transaction

CHUNK_ROWS = 5000
_ROW_SCHEMA = ContactImportRowSchema()


def import_contacts(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    lines: Iterable[str],
    fmt: str,
    source: str,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Validate every row, log the good ones once, report the bad ones by row and field."""
    counts = {"total_rows": 0, "created": 0, "flagged": 0, "already_logged": 0, "rejected": 0}
    errors: list[dict[str, Any]] = []
    memo = CallMemo()  # the calls read for one chunk's rules serve the next ones
    write_chunks(
        row_chunks(lines, fmt, CHUNK_ROWS, progress),
        lambda chunk: _write_chunk(db, rt, caller, chunk, counts, errors, memo),
    )
    with transaction(db):
        log_action(db, caller, "contacts_imported", "import", None, {"format": fmt, **counts})
    return {
        "format": fmt,
        "source": source,
        **counts,
        "errors": errors[:MAX_REPORTED_ERRORS],
        "errors_truncated": len(errors) > MAX_REPORTED_ERRORS,
    }


def load_row(raw: dict[str, Any]) -> tuple[dict[str, Any] | None, tuple[str | None, str] | None]:
    """(the row as ContactImportRowSchema loads it, None), or (None, (field, message)) of
    its first error. Plainly well-formed rows skip marshmallow (fast_load_contact_row)."""
    row = fast_load_contact_row(raw)
    if row is not None:
        return row, None
    try:
        return _ROW_SCHEMA.load(raw), None
    except ValidationError as exc:
        return None, _first_error(exc.messages)


def _reject(errors: list[dict[str, Any]], number: int, field: str | None, message: str) -> None:
    errors.append({"row": number, "field": field, "message": message})


def _write_chunk(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    chunk: list[tuple[int, dict | str]],
    counts: dict[str, int],
    errors: list[dict[str, Any]],
    memo: CallMemo,
) -> None:
    valid: list[tuple[int, dict[str, Any]]] = []
    for number, raw in chunk:
        counts["total_rows"] += 1
        if isinstance(raw, str):
            _reject(errors, number, None, raw)
            counts["rejected"] += 1
            continue
        row, problem = load_row(raw)
        if problem is not None:
            _reject(errors, number, *problem)
            counts["rejected"] += 1
        else:
            valid.append((number, row))
    with transaction(db):
        cases = contact_rows.cases_by_external_id(db, [r["case_external_id"] for _, r in valid])
        users = contact_rows.users_by_name(db, [r["agent"] for _, r in valid])
        candidates = []
        latest = caller.now + CLOCK_TOLERANCE
        logged_by = caller.principal.user_id if caller.principal else None
        for number, row in valid:
            case_id = cases.get(row["case_external_id"])
            if row["occurred_at"] > latest:
                _reject(errors, number, "occurred_at", "in the future")
                counts["rejected"] += 1
                continue
            if case_id is None:
                _reject(errors, number, "case_external_id", "no such case")
                counts["rejected"] += 1
                continue
            user_id = users.get(row["agent"].casefold())
            candidate = Candidate(
                case_id=case_id,
                channel=row["channel"],
                direction=row["direction"],
                occurred_at=row["occurred_at"],
                outcome=row["outcome"],
                agent_id=user_id,
                agent_name=None if user_id is not None else row["agent"],
                source=SOURCE_IMPORT,
                # The import's own id of the row: the dialer's reference, else the natural key.
                reference=f"{row['channel']}:{row['external_ref']}"
                if row.get("external_ref")
                else "",
                duration_s=row.get("duration_s"),
                notes=row.get("notes"),
                external_ref=row.get("external_ref"),
                logged_by=logged_by,
                promise_amount=row.get("promise_amount"),
                promise_date=row.get("promise_date"),
            )
            candidates.append(candidate)
        # Match first: only the candidates that become new entries keep their flags, so
        # only they are judged (every one still counts as a contact before later ones).
        placement = place_contacts(db, candidates)
        flags = contact_flags(db, rt, candidates, judged=placement.fresh, memo=memo)
        merged = write_contacts(db, candidates, placement, caller.now, flags)
        record_promises(db, candidates, merged)
        memo.note_written(
            (m.contact_id, c) for m, c in zip(merged, candidates, strict=True) if m.created
        )
    counts["created"] += sum(1 for m in merged if m.created)
    counts["flagged"] += sum(1 for m, f in zip(merged, flags, strict=True) if m.created and f)
    counts["already_logged"] += sum(1 for m in merged if not m.created)


def _reference(row: dict[str, Any]) -> str:
    return f"{row['channel']}:{row['external_ref']}" if row.get("external_ref") else ""


def _first_error(messages: Any) -> tuple[str | None, str]:
    prefix = None
    while isinstance(messages, dict) and messages:
        key, messages = next(iter(messages.items()))
        prefix = None if key == "_schema" else (f"{prefix}.{key}" if prefix else str(key))
    text = messages[0] if isinstance(messages, list) and messages else messages
    return (field_name(prefix) if prefix else None), str(text)
