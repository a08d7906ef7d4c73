"""What dispatchers read of sync: stored records with their flags, and each device's health."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlite_utils

from server.clock import parse_iso
from server.storage import sync as sync_rows
from sync.identity import id_verification

# A device that has not pushed or pulled for this long during the day is "behind".
BEHIND_AFTER_S = 2 * 3600


def list_records(
    db: sqlite_utils.Database, filters: dict[str, Any], after: int, limit: int
) -> dict:
    """One page of synced records with their flags and ID verification, for staff."""
    items = []
    for row in sync_rows.list_records(db, filters, after, limit):
        outcome = json.loads(row.pop("outcome"))
        body = json.loads(row["body"])
        items.append(
            {
                **row,
                "body": body,
                "flags": outcome.get("flags", []),
                "content_hash": outcome.get("content_hash"),
                "id_verification": id_verification(row["kind"], body, outcome),
            }
        )
    return {"items": items, "next_after": items[-1]["seq"] if len(items) == limit else None}


def device_health(db: sqlite_utils.Database, now: datetime, skew_limit_s: float) -> list[dict]:
    """Every device's sync state: last contact, queue age, clock skew."""
    rows = []
    for row in sync_rows.health_rows(db):
        oldest = row["oldest_queued_at"]
        row["oldest_queued_age_s"] = (
            round((now - parse_iso(oldest)).total_seconds(), 1) if oldest else None
        )
        row["state"] = _state(row, now, skew_limit_s)
        rows.append(row)
    return rows


def _state(row: dict[str, Any], now: datetime, skew_limit_s: float) -> str:
    if row["device_status"] == "revoked":
        return "revoked"
    contacts = [parse_iso(t) for t in (row["last_push_at"], row["last_pull_at"]) if t]
    if not contacts:
        return "never_synced"
    if row["unconfirmed_purges"]:
        return "purge_pending"
    behind = (now - max(contacts)).total_seconds() > BEHIND_AFTER_S
    if behind or (row["queued_count"] or 0) > 0 or abs(row["clock_skew_s"] or 0) > skew_limit_s:
        return "behind"
    return "ok"
