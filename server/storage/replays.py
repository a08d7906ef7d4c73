"""Stored records as far as answering a replay reads them: one query per push, plain tuples."""

from __future__ import annotations

from typing import Any

import sqlite_utils

# A stored record as answering a replay reads it, a plain tuple in this order: its id,
# owner, raw digest, outcome (JSON), kind, visit, and the body (JSON) of an ID
# confirmation only (no other kind's answer reads its body).
ReplayRow = tuple[str, int, str | None, str, str, int, str | None]
ID, AGENT_ID, RAW_DIGEST, OUTCOME, KIND, VISIT_ID, BODY = range(7)

_SQL = (
    "SELECT id, agent_id, raw_digest, outcome, kind, visit_id, "
    "CASE WHEN kind = 'id_confirmation' THEN body END FROM sync_records WHERE id IN ({marks})"
)


def replay_rows(db: sqlite_utils.Database, ids: list[str]) -> dict[str, ReplayRow]:
    """By id, the stored records among `ids` (a push's batch: at most MAX_PUSH_RECORDS),
    as the rows the cursor reads (no object built per row)."""
    if not ids:
        return {}
    cursor: Any = db.execute(_SQL.format(marks=",".join("?" * len(ids))), ids)
    return {row[0]: row for row in cursor}
