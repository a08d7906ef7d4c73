"""Signed checkpoints of the exposure ledger: on demand, every N entries, at least every N
seconds while entries arrive, for retention; each one also written outside the database."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from server.clock import parse_iso, to_iso
from server.domain.ledger import Checkpoint, sign_checkpoint
from server.errors import NotFound
from server.keys import state_dir
from server.runtime import Caller, Runtime
from server.services.staff_log import log_action
from server.storage import ledger as ledger_rows
from server.storage import ledger_files
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
    publish_checkpoints(db, rt)
    return checkpoint_document(rt, row)


def maybe_checkpoint(db: sqlite_utils.Database, rt: Runtime, now: datetime) -> dict | None:
    """Sign the head if the chain grew by CHECKPOINT_EVERY entries since the last checkpoint,
    or an entry has waited CHECKPOINT_EVERY_S seconds for one (cron's `--if-due`).

    Costs a few index lookups when nothing is due, so it can run as often as wanted.
    """
    if _due_reason(db, rt, now) is None:
        return None
    with transaction(db):
        reason = _due_reason(db, rt, now)  # another process may have signed it meanwhile
        row = None if reason is None else record_checkpoint(db, rt, now, reason)
    publish_checkpoints(db, rt)
    return row


def sign_if_stale(db: sqlite_utils.Database, rt: Runtime, now: datetime) -> datetime | None:
    """Sign the head if an entry has waited CHECKPOINT_EVERY_S seconds for a checkpoint.

    Returns when to look again (None: never, the setting is 0). Two index lookups when
    nothing is due; the requests of a server call it at most once per returned time.
    """
    every_s = int(rt.settings["CHECKPOINT_EVERY_S"])
    if every_s <= 0:
        return None
    wait = timedelta(seconds=every_s)
    oldest = ledger_rows.oldest_unsigned_entry(db)
    if oldest is None:
        return now + wait
    if parse_iso(oldest[1]) + wait > now:
        return parse_iso(oldest[1]) + wait
    with transaction(db):
        if _stale(db, now, wait):  # another worker may have signed it meanwhile
            record_checkpoint(db, rt, now, f"every {every_s} s")
    publish_checkpoints(db, rt)
    return now + wait


def _due_reason(db: sqlite_utils.Database, rt: Runtime, now: datetime) -> str | None:
    every, every_s = int(rt.settings["CHECKPOINT_EVERY"]), int(rt.settings["CHECKPOINT_EVERY_S"])
    if every > 0:
        last = ledger_rows.latest_checkpoint(db)
        if ledger_rows.head(db)[0] - (last["head_seq"] if last else 0) >= every:
            return f"every {every} entries"
    if every_s > 0 and _stale(db, now, timedelta(seconds=every_s)):
        return f"every {every_s} s"
    return None


def _stale(db: sqlite_utils.Database, now: datetime, wait: timedelta) -> bool:
    oldest = ledger_rows.oldest_unsigned_entry(db)
    return oldest is not None and parse_iso(oldest[1]) + wait <= now


def checkpoint_dir(rt: Runtime) -> Path | None:
    """Where checkpoints are written outside the database (None for an in-memory one)."""
    configured = rt.settings["CHECKPOINT_DIR"]
    if configured:
        return Path(configured)
    directory = state_dir(rt.settings)
    return None if directory is None else Path(directory) / "checkpoints"


def publish_checkpoints(db: sqlite_utils.Database, rt: Runtime) -> int:
    """Append every stored checkpoint the external files lack (after the last one they
    hold) to the file of its day, fsynced; returns how many. Raises OSError on failure."""
    directory = checkpoint_dir(rt)
    if directory is None:
        return 0
    with ledger_files.locked(directory):
        rows = ledger_rows.checkpoints_after_id(db, ledger_files.last_checkpoint_id(directory))
        by_day: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            record = file_record(row)
            by_day.setdefault(record["created_at"][:10], []).append(record)
        for day, records in by_day.items():
            ledger_files.append_records(ledger_files.checkpoint_file(directory, day), records)
    return len(rows)


def file_record(row: dict[str, Any]) -> dict[str, Any]:
    """A stored checkpoint as one line of the external files: the signed values, its id and
    reason; the public key is found by key_id in the keyring file beside it."""
    return {
        "type": "ledger_checkpoint",
        **as_checkpoint(row).to_dict(),
        "id": row["id"],
        "reason": row["reason"],
    }


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


def ledger_status(db: sqlite_utils.Database) -> dict[str, Any]:
    """The ledger's head and its latest signed checkpoint (None before the first)."""
    head_seq, head_hash = ledger_rows.head(db)
    return {
        "head_seq": head_seq,
        "head_hash": head_hash,
        "last_checkpoint": ledger_rows.latest_checkpoint(db),
    }
