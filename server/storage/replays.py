"""Stored records as far as answering a replay reads them: one query per push, plain tuples."""

from __future__ import annotations

from typing import Any, NamedTuple

import sqlite_utils


class ReplayRow(NamedTuple):
    """A stored record's id, owner, raw digest, outcome (JSON), kind, visit and the body
    (JSON) of an ID confirmation only: no other kind's answer reads its body."""

    id: str
    agent_id: int
    raw_digest: str | None
    outcome: str
    kind: str
    visit_id: int
    body: str | None


_SQL = (
    "SELECT id, agent_id, raw_digest, outcome, kind, visit_id, "
    "CASE WHEN kind = 'id_confirmation' THEN body END FROM sync_records WHERE id IN ({marks})"
)


def replay_rows(db: sqlite_utils.Database, ids: list[str]) -> dict[str, ReplayRow]:
    """By id, the stored records among `ids` (a push's batch: at most MAX_PUSH_RECORDS)."""
    if not ids:
        return {}
    cursor: Any = db.execute(_SQL.format(marks=",".join("?" * len(ids))), ids)
    return {row[0]: ReplayRow(*row) for row in cursor}
