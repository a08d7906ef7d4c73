"""The staff audit log: append-only rows of who did what."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils


def append_staff_action(db: sqlite_utils.Database, action: dict[str, Any]) -> None:
    db.execute(
        "INSERT INTO staff_audit (occurred_at, user_id, username, role, action, target_type, "
        "target_id, details, request_id, address) VALUES (:occurred_at, :user_id, :username, "
        ":role, :action, :target_type, :target_id, :details, :request_id, :address)",
        {**action, "details": json.dumps(action.get("details") or {}, sort_keys=True)},
    )


_FILTERS = {
    "user_id": "user_id = :user_id",
    "action": "action = :action",
    "target_type": "target_type = :target_type",
    "target_id": "target_id = :target_id",
    "since": "occurred_at >= :since",
    "until": "occurred_at < :until",
    "after_id": "id > :after_id",
}


def query_staff_actions(
    db: sqlite_utils.Database, filters: dict[str, Any], limit: int
) -> list[dict[str, Any]]:
    clauses = [_FILTERS[k] for k, v in filters.items() if v is not None and k in _FILTERS]
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    params = {k: v for k, v in filters.items() if v is not None}
    rows = list(
        db.query(
            f"SELECT * FROM staff_audit{where} ORDER BY id LIMIT :limit", {**params, "limit": limit}
        )
    )
    for row in rows:
        row["details"] = json.loads(row["details"])
    return rows
