"""Reads of a pull that are its own: the device's records with whose borrower each is."""

from __future__ import annotations

from typing import Any

import sqlite_utils

Row = dict[str, Any]

# sync.outcomes_after's columns, and the record's owner as ledger.subjects("record") reads
# it (the same join), so accounting the outcomes need not read it again.
_OUTCOMES = (
    "SELECT r.seq, r.id, r.kind, r.visit_id, r.outcome, "
    "CASE WHEN r.kind = 'id_confirmation' THEN r.body END AS body, "
    "c.borrower_id, r.case_id FROM sync_records r LEFT JOIN cases c ON c.id = r.case_id "
    "WHERE r.device_id = ? AND r.seq > ? ORDER BY r.seq LIMIT ?"
)
_KEYS = ("seq", "id", "kind", "visit_id", "outcome", "body", "borrower_id", "case_id")


def outcomes_after(
    db: sqlite_utils.Database, device_id: str, after_seq: int, limit: int
) -> list[Row]:
    """storage.sync.outcomes_after's rows (the device's records after `after_seq` in order,
    `body` for ID confirmations only), each with its case's `borrower_id` (None when the
    case is unknown) and `case_id`."""
    cursor = db.execute(_OUTCOMES, [device_id, after_seq, limit])
    return [dict(zip(_KEYS, values, strict=True)) for values in cursor]
