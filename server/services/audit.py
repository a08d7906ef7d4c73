"""What privacy officers ask of the ledger and the staff log."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import sqlite_utils

from server.clock import to_iso
from server.domain.ledger import verify_chain
from server.storage import audit, ledger


def _iso_filters(filters: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (to_iso(v) if k in ("since", "until") and v is not None else v)
        for k, v in filters.items()
    }


def exposures(db: sqlite_utils.Database, filters: dict[str, Any], after: int, limit: int) -> dict:
    rows = ledger.query_entries(db, {**_iso_filters(filters), "after_seq": after}, limit)
    for row in rows:
        row["fields_"] = json.loads(row.pop("fields"))
    return {"items": rows, "next_after": rows[-1]["seq"] if len(rows) == limit else None}


def verify(db: sqlite_utils.Database) -> dict[str, Any]:
    """Walk the whole chain; name the first entry altered, inserted or removed."""
    return asdict(verify_chain(ledger.iter_entries(db)))


def staff_actions(
    db: sqlite_utils.Database, filters: dict[str, Any], after: int, limit: int
) -> dict:
    rows = audit.query_staff_actions(db, {**_iso_filters(filters), "after_id": after}, limit)
    return {"items": rows, "next_after": rows[-1]["id"] if len(rows) == limit else None}
