"""Exposure ledger rows: append in one statement, read in seq order, filter for audits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlite_utils

from server.domain.ledger import GENESIS_HASH, chain

_INSERT = (
    "INSERT INTO exposure_ledger (seq, occurred_at, user_id, role, device_id, borrower_id, "
    "case_id, visit_id, fields, purpose, endpoint, request_id, outcome, prev_hash, hash) "
    "VALUES (:seq, :occurred_at, :user_id, :role, :device_id, :borrower_id, :case_id, "
    ":visit_id, :fields, :purpose, :endpoint, :request_id, :outcome, :prev_hash, :hash)"
)


def head(db: sqlite_utils.Database) -> tuple[int, str]:
    row = db.execute("SELECT seq, hash FROM exposure_ledger ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


def append(db: sqlite_utils.Database, entries: list[dict[str, Any]]) -> None:
    """Chain and insert entries; the caller holds the write transaction."""
    if not entries:
        return
    head_seq, head_hash = head(db)
    db.conn.executemany(_INSERT, chain(entries, head_seq, head_hash))


def iter_entries(db: sqlite_utils.Database, after_seq: int = 0) -> Iterator[dict[str, Any]]:
    cursor = db.execute("SELECT * FROM exposure_ledger WHERE seq > ? ORDER BY seq", [after_seq])
    columns = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(columns, row, strict=True))


_FILTERS = {
    "borrower_id": "borrower_id = :borrower_id",
    "user_id": "user_id = :user_id",
    "device_id": "device_id = :device_id",
    "case_id": "case_id = :case_id",
    "visit_id": "visit_id = :visit_id",
    "since": "occurred_at >= :since",
    "until": "occurred_at < :until",
    "field": "EXISTS (SELECT 1 FROM json_each(fields) WHERE value = :field)",
    "after_seq": "seq > :after_seq",
}


def query_entries(db: sqlite_utils.Database, filters: dict[str, Any], limit: int) -> list[dict]:
    """Entries matching every given filter, oldest first, at most `limit`."""
    clauses = [_FILTERS[k] for k, v in filters.items() if v is not None and k in _FILTERS]
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    params = {k: v for k, v in filters.items() if v is not None}
    return list(
        db.query(
            f"SELECT * FROM exposure_ledger{where} ORDER BY seq LIMIT :limit",
            {**params, "limit": limit},
        )
    )
