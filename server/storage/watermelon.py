"""The WatermelonDB front door's rows: the pulls each phone was answered, and the refused
records it has not been told of yet."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

Row = dict[str, Any]


def pull_at(db: sqlite_utils.Database, device_id: str, stamp: int) -> Row | None:
    """The pull this device was answered with `stamp`, if kept."""
    rows = list(
        db.query(
            "SELECT * FROM watermelon_pulls WHERE device_id = ? AND stamp = ?", [device_id, stamp]
        )
    )
    if not rows:
        return None
    row = rows[0]
    row["purges"] = [tuple(pair) for pair in json.loads(row["purges"])]
    return row


def latest_stamp(db: sqlite_utils.Database, device_id: str) -> int | None:
    row = db.execute(
        "SELECT max(stamp) FROM watermelon_pulls WHERE device_id = ?", [device_id]
    ).fetchone()
    return row[0] if row else None


def save_pull(db: sqlite_utils.Database, row: Row) -> None:
    """Keep where a pull left the device (`purges`: (visit_id, ordered_at) pairs sent)."""
    db.execute(
        "INSERT INTO watermelon_pulls (device_id, stamp, cursor, rejection_seq, purges, "
        "pulled_at) VALUES (:device_id, :stamp, :cursor, :rejection_seq, :purges, :pulled_at)",
        {**row, "purges": json.dumps([list(pair) for pair in row["purges"]])},
    )


def forget_pulls_before(db: sqlite_utils.Database, device_id: str, before: str) -> None:
    """Drop this device's pulls answered before `before`, except its latest."""
    db.execute(
        "DELETE FROM watermelon_pulls WHERE device_id = ? AND pulled_at < ? "
        "AND stamp < (SELECT max(stamp) FROM watermelon_pulls WHERE device_id = ?)",
        [device_id, before, device_id],
    )


def rejections_after(
    db: sqlite_utils.Database, device_id: str, after: int, limit: int
) -> list[Row]:
    """Records this device pushed that were refused for good, after position `after`."""
    return list(
        db.query(
            "SELECT id, record_id, reason, message, kind FROM sync_rejections "
            "WHERE device_id = ? AND id > ? ORDER BY id LIMIT ?",
            [device_id, after, limit],
        )
    )


def stored_ids(db: sqlite_utils.Database, agent_id: int, record_ids: list[str]) -> dict[str, str]:
    """Of these record ids, those this agent has stored, with their kind."""
    found: dict[str, str] = {}
    for start in range(0, len(record_ids), 500):
        batch = record_ids[start : start + 500]
        marks = ", ".join("?" * len(batch))
        for record_id, kind in db.execute(
            f"SELECT id, kind FROM sync_records WHERE agent_id = ? AND id IN ({marks})",
            [agent_id, *batch],
        ):
            found[record_id] = kind
    return found
