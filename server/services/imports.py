"""Importing cases from the bank's core system: JSON Lines or CSV, row by row."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import sqlite_utils
from marshmallow import ValidationError

from schemas.cases import LEGACY_CLOSED, CaseRowSchema
from schemas.common import field_name
from server.clock import to_iso
from server.collector import collector_paused
from server.errors import InvalidInput
from server.runtime import Caller, Runtime
from server.services.case_lifecycle import CaseChange, apply_change, stop_visits
from server.services.staff_log import log_action
from server.storage import cases as case_rows
from server.storage.connection import transaction
from sync.cases import CASE_FLAGS, CLOSED_PAID, CLOSED_STATUSES

CHUNK_ROWS = 500
MAX_REPORTED_ERRORS = 1000
_ROW_SCHEMA = CaseRowSchema()
_CSV_LISTS = {"phones"}
_CSV_JSON = {"contacts"}
T = TypeVar("T")


def first_error(messages: Any, prefix: str = "") -> tuple[str | None, str]:
    """(dotted field path or None, message) of the first error marshmallow reported."""
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        path = f"{prefix}.{key}" if prefix else str(key)
        if path == "_schema":
            path = None
        return first_error(value, path or "")
    if isinstance(messages, list) and messages:
        if isinstance(messages[0], (dict, list)):
            return first_error(messages[0], prefix)
        return (prefix or None), str(messages[0])
    return (prefix or None), str(messages)


def read_jsonl(lines: Iterable[str]) -> Iterator[tuple[int, dict | str]]:
    """(row number, object) per non-blank line, or (row number, parse error)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"not valid JSON: {exc.msg}"
            continue
        yield number, value if isinstance(value, dict) else "each line must be a JSON object"


def write_chunks(chunks: Iterator[T], write: Callable[[T], None]) -> None:
    """write(chunk) for each chunk, with the garbage collector paused while one chunk is
    read and written (server/collector.py: a third of an import's CPU otherwise)."""
    while True:
        with collector_paused():
            chunk = next(chunks, None)
            if chunk is None:
                return
            write(chunk)


def row_chunks(
    lines: Iterable[str],
    fmt: str,
    size: int,
    progress: Callable[[int], None] | None = None,
) -> Iterator[list[tuple[int, dict | str]]]:
    """An import's rows ((row number, row or why unreadable)) in chunks of `size`, each
    counted on `progress` once the caller has written it; 422 for a format neither JSON
    Lines nor CSV."""
    if fmt not in ("jsonl", "csv"):
        raise InvalidInput("format must be jsonl or csv", field="format")
    chunk: list[tuple[int, dict | str]] = []
    for item in read_jsonl(lines) if fmt == "jsonl" else read_csv(lines):
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            if progress:
                progress(len(chunk))
            chunk = []
    if chunk:
        yield chunk
        if progress:
            progress(len(chunk))


def read_csv(lines: Iterable[str]) -> Iterator[tuple[int, dict | str]]:
    """(row number, row) with empty cells left out, lists split on ';', contacts as JSON."""
    reader = csv.DictReader(lines)
    for number, raw in enumerate(reader, start=1):
        if None in raw:
            yield number, "more cells than header columns"
            continue
        row: dict[str, Any] = {}
        try:
            for key, value in raw.items():
                if value is None or value.strip() == "":
                    continue
                if key in _CSV_LISTS:
                    row[key] = [part.strip() for part in value.split(";") if part.strip()]
                elif key in _CSV_JSON:
                    row[key] = json.loads(value)
                else:
                    row[key] = value.strip()
        except json.JSONDecodeError:
            yield number, "contacts must be a JSON list"
            continue
        yield number, row


def _normalise(row: dict[str, Any], default_tz: str) -> tuple[dict, dict, str]:
    """Validated row -> (borrower columns, case columns, content hash)."""
    plain = {
        k: (str(v) if isinstance(v, Decimal) else v.isoformat() if hasattr(v, "isoformat") else v)
        for k, v in row.items()
    }
    plain["time_zone"] = plain.get("time_zone") or default_tz
    content_hash = hashlib.sha256(
        json.dumps(plain, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    borrower = {
        "external_id": plain["borrower_external_id"],
        "full_name": plain["full_name"],
        "national_id": plain.get("national_id"),
        "phones": json.dumps(plain.get("phones") or []),
        "home_address": plain.get("home_address"),
        "home_lat": plain.get("home_lat"),
        "home_lon": plain.get("home_lon"),
        "work_address": plain.get("work_address"),
        "employer": plain.get("employer"),
        "date_of_birth": plain.get("date_of_birth"),
        "contacts": json.dumps(plain.get("contacts") or []),
        "income": plain.get("income"),
        "time_zone": plain["time_zone"],
    }
    case = {
        "external_id": plain["case_external_id"],
        "product": plain["product"],
        "overdue_amount": plain["overdue_amount"],
        "currency": plain["currency"],
        "days_past_due": plain["days_past_due"],
        "last_payment_date": plain.get("last_payment_date"),
        "last_payment_amount": plain.get("last_payment_amount"),
        **{flag: _flag(plain.get(flag)) for flag in CASE_FLAGS},
        "status": CLOSED_PAID if plain["status"] == LEGACY_CLOSED else plain["status"],
        "content_hash": content_hash,
    }
    return borrower, case, content_hash


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def import_cases(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    lines: Iterable[str],
    fmt: str,
    source: str,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Validate every row, keep the good ones, report the bad ones; idempotent per case."""
    counts = {"total_rows": 0, "created": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    effects = {"visits_cancelled": 0, "purges_ordered": 0}
    errors: list[dict[str, Any]] = []
    write_chunks(
        row_chunks(lines, fmt, CHUNK_ROWS, progress),
        lambda chunk: _write_chunk(db, rt, caller, chunk, counts, effects, errors),
    )
    with transaction(db):
        import_id = case_rows.record_import_run(
            db,
            {
                "started_at": to_iso(caller.now),
                "source": source,
                "format": fmt,
                "user_id": caller.principal.user_id if caller.principal else None,
                **counts,
            },
        )
        log_action(
            db,
            caller,
            "cases_imported",
            "import",
            import_id,
            {"source": source, "format": fmt, **counts, **effects},
        )
    return {
        "import_id": import_id,
        "format": fmt,
        **counts,
        **effects,
        "errors": errors[:MAX_REPORTED_ERRORS],
        "errors_truncated": len(errors) > MAX_REPORTED_ERRORS,
    }


def _write_chunk(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    chunk: list[tuple[int, dict | str]],
    counts: dict[str, int],
    effects: dict[str, int],
    errors: list[dict[str, Any]],
) -> None:
    valid: list[tuple[dict, dict, str]] = []
    for number, raw in chunk:
        counts["total_rows"] += 1
        external = raw.get("case_external_id") if isinstance(raw, dict) else None
        if isinstance(raw, str):
            errors.append({"row": number, "case_external_id": None, "field": None, "message": raw})
            counts["rejected"] += 1
            continue
        try:
            row = _ROW_SCHEMA.load(raw)
        except ValidationError as exc:
            field, message = first_error(exc.messages)
            errors.append(
                {
                    "row": number,
                    "case_external_id": field_name(external) if isinstance(external, str) else None,
                    "field": field,
                    "message": message,
                }
            )
            counts["rejected"] += 1
            continue
        valid.append(_normalise(row, rt.settings["DEFAULT_TIME_ZONE"]))
    now = to_iso(caller.now)
    with transaction(db):
        known = case_rows.case_hashes(db, [c["external_id"] for _, c, _ in valid])
        changes: list[CaseChange] = []
        for borrower, case, content_hash in valid:
            existing = known.get(case["external_id"])
            if existing and existing[1] == content_hash:
                counts["unchanged"] += 1
                continue
            case["borrower_id"] = case_rows.upsert_borrower(db, borrower, now)
            if existing:
                # Status and flags go through the case lifecycle, like a dispatcher's change.
                before = case_rows.get_case(db, existing[0]) or {}
                lifecycle = {"status", "closed_at", *CASE_FLAGS}
                data = {k: v for k, v in case.items() if k not in lifecycle}
                changes.append(
                    apply_change(
                        db,
                        rt,
                        caller,
                        before,
                        status=case["status"],
                        flags={flag: case[flag] for flag in CASE_FLAGS},
                        reason="case import",
                        source="import",
                        data=data,
                    )
                )
                counts["updated"] += 1
                known[case["external_id"]] = (existing[0], content_hash)
            else:
                case.update({flag: case[flag] or 0 for flag in CASE_FLAGS})
                case["closed_at"] = now if case["status"] in CLOSED_STATUSES else None
                known[case["external_id"]] = (case_rows.insert_case(db, case, now), content_hash)
                counts["created"] += 1
        stop_visits(db, rt, caller, changes)
        effects["visits_cancelled"] += sum(c.visits_cancelled for c in changes)
        effects["purges_ordered"] += sum(c.purges_ordered for c in changes)
