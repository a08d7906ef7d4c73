"""Signed checkpoints of the exposure ledger: on demand, every N entries, for retention."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlite_utils

from server.clock import parse_iso, to_iso
from server.domain.ledger import Checkpoint, sign_checkpoint
from server.errors import NotFound
from server.runtime import Caller, Runtime
from server.services.staff_log import log_action
from server.storage import ledger as ledger_rows
from server.storage.connection import transaction


def record_checkpoint(
    db: sqlite_utils.Database,
    rt: Runtime,
    now: datetime,
    reason: str,
    position: tuple[int, str] | None = None,
) -> dict[str, Any]:
    """Sign and store a chain position (the head by default); the caller holds the lock."""
    head_seq, head_hash = position or ledger_rows.head(db)
    signed = sign_checkpoint(rt.keys.private_key, head_seq, head_hash, now)
    row = {
        "created_at": to_iso(signed.created_at),
        "head_seq": head_seq,
        "head_hash": head_hash,
        "key_id": signed.key_id,
        "signature": signed.signature,
        "reason": reason,
    }
    return {"id": ledger_rows.insert_checkpoint(db, row), **row}


def take_checkpoint(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, reason: str | None
) -> dict[str, Any]:
    """Sign the current head on request and log who asked; returns the exportable document."""
    with transaction(db):
        row = record_checkpoint(db, rt, caller.now, reason or "on demand")
        log_action(
            db,
            caller,
            "ledger_checkpoint",
            "ledger_checkpoint",
            row["id"],
            {"head_seq": row["head_seq"], "reason": row["reason"]},
        )
    return checkpoint_document(rt, row)


def maybe_checkpoint(db: sqlite_utils.Database, rt: Runtime, now: datetime) -> dict | None:
    """Sign the head if the chain grew by CHECKPOINT_EVERY entries since the last checkpoint.

    Costs two index lookups when nothing is due, so it can run as often as wanted.
    """
    every = int(rt.settings["CHECKPOINT_EVERY"])
    if every <= 0 or not _due(db, every):
        return None
    with transaction(db):
        if not _due(db, every):  # another process signed it meanwhile
            return None
        return record_checkpoint(db, rt, now, f"every {every} entries")


def _due(db: sqlite_utils.Database, every: int) -> bool:
    last = ledger_rows.latest_checkpoint(db)
    return ledger_rows.head(db)[0] - (last["head_seq"] if last else 0) >= every


def checkpoint_at_head(
    db: sqlite_utils.Database, rt: Runtime, now: datetime, reason: str
) -> dict[str, Any]:
    """The latest checkpoint if it already signs the head, else a new one; caller holds lock."""
    last = ledger_rows.latest_checkpoint(db)
    if last and (last["head_seq"], last["head_hash"]) == ledger_rows.head(db):
        return last
    return record_checkpoint(db, rt, now, reason)


def list_checkpoints(db: sqlite_utils.Database, after: int, limit: int) -> dict[str, Any]:
    """One page of stored ledger checkpoints, oldest first."""
    rows = ledger_rows.list_checkpoints(db, after, limit)
    return {"items": rows, "next_after": rows[-1]["id"] if len(rows) == limit else None}


def get_checkpoint_document(
    db: sqlite_utils.Database, rt: Runtime, checkpoint_id: int
) -> dict[str, Any]:
    """A stored checkpoint as the self-contained signed document."""
    row = ledger_rows.get_checkpoint(db, checkpoint_id)
    if row is None:
        raise NotFound("no such checkpoint")
    return checkpoint_document(rt, row)


def as_checkpoint(row: dict[str, Any]) -> Checkpoint:
    """A stored checkpoint row as the signed Checkpoint value."""
    return Checkpoint(
        row["head_seq"],
        row["head_hash"],
        parse_iso(row["created_at"]),
        row["key_id"],
        row["signature"],
    )


def checkpoint_document(rt: Runtime, row: dict[str, Any]) -> dict[str, Any]:
    """The small file to keep outside the database: the signed values and the public key."""
    return {
        **as_checkpoint(row).to_dict(),
        "id": row["id"],
        "reason": row["reason"],
        "algorithm": "Ed25519",
        "public_key_pem": rt.keys.public_pem(),
    }
