"""Borrower requests: do-not-visit, do-not-contact, preferred contact times, out-of-hours
consent; each with where it came from, who took it and when, and its withdrawal."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

Row = dict[str, Any]

_COLUMNS = (
    "borrower_id",
    "kind",
    "channel",
    "window_start",
    "window_end",
    "weekdays",
    "valid_from",
    "valid_until",
    "evidence",
    "note",
    "source",
    "visit_id",
    "taken_by",
    "taken_at",
    "recorded_at",
)


def _row(row: Row) -> Row:
    row["weekdays"] = json.loads(row["weekdays"]) if row.get("weekdays") else None
    return row


def insert_request(db: sqlite_utils.Database, request: Row) -> int:
    values = {c: request.get(c) for c in _COLUMNS}
    if values["weekdays"] is not None:
        values["weekdays"] = json.dumps(values["weekdays"])
    cursor = db.execute(
        f"INSERT INTO borrower_requests ({', '.join(_COLUMNS)}) "
        f"VALUES ({', '.join(':' + c for c in _COLUMNS)})",
        values,
    )
    return int(cursor.lastrowid)


def get_request(db: sqlite_utils.Database, borrower_id: int, request_id: int) -> Row | None:
    rows = list(
        db.query(
            "SELECT * FROM borrower_requests WHERE id = ? AND borrower_id = ?",
            [request_id, borrower_id],
        )
    )
    return _row(rows[0]) if rows else None


def list_requests(
    db: sqlite_utils.Database, borrower_id: int, kind: str | None, active_only: bool
) -> list[Row]:
    """The borrower's requests, oldest first."""
    clauses, params = ["borrower_id = :borrower"], {"borrower": borrower_id, "kind": kind}
    if kind is not None:
        clauses.append("kind = :kind")
    if active_only:
        clauses.append("withdrawn_at IS NULL")
    return [
        _row(r)
        for r in db.query(
            f"SELECT * FROM borrower_requests WHERE {' AND '.join(clauses)} ORDER BY id", params
        )
    ]


def consents_of_borrowers(db: sqlite_utils.Database, borrower_ids: list[int]) -> list[Row]:
    """Every out-of-hours consent of these borrowers, withdrawn ones included."""
    return [
        _row(r)
        for r in db.query(
            "SELECT * FROM borrower_requests WHERE kind = 'out_of_hours_consent' "
            "AND borrower_id IN (SELECT value FROM json_each(?)) ORDER BY id",
            [json.dumps(sorted(set(borrower_ids)))],
        )
    ]


def withdraw_request(db: sqlite_utils.Database, request_id: int, withdrawal: Row) -> bool:
    """Record the withdrawal of a request still in force; False if it was withdrawn."""
    cursor = db.execute(
        "UPDATE borrower_requests SET withdrawn_at = :withdrawn_at, "
        "withdrawal_source = :withdrawal_source, withdrawn_by = :withdrawn_by, "
        "withdrawal_recorded_at = :withdrawal_recorded_at "
        "WHERE id = :id AND withdrawn_at IS NULL",
        {**withdrawal, "id": request_id},
    )
    return cursor.rowcount == 1
