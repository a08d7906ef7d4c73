"""What privacy officers ask of the ledger and the staff log."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import Any

import sqlite_utils

from server.clock import to_iso
from server.domain.ledger import (
    GENESIS_HASH,
    ChainReport,
    checkpoint_is_signed,
    read_checkpoint,
    verify_fast,
)
from server.errors import InvalidInput
from server.runtime import Runtime
from server.services.checkpoints import as_checkpoint
from server.storage import audit as audit_rows
from server.storage import ledger as ledger_rows


def _iso_filters(filters: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (to_iso(v) if k in ("since", "until") and v is not None else v)
        for k, v in filters.items()
    }


def exposures(db: sqlite_utils.Database, filters: dict[str, Any], after: int, limit: int) -> dict:
    """One page of exposure-ledger entries matching the filters, oldest first."""
    rows = ledger_rows.query_entries(db, {**_iso_filters(filters), "after_seq": after}, limit)
    for row in rows:
        row["fields_"] = json.loads(row.pop("fields"))
    return {"items": rows, "next_after": rows[-1]["seq"] if len(rows) == limit else None}


def verify(db: sqlite_utils.Database, rt: Runtime) -> dict[str, Any]:
    """Walk the chain from its anchor; name the first entry altered, inserted or removed.

    Then hold it against every stored checkpoint signed with this server's key, so a
    rewritten chain or a cut-off tail is reported too.
    """
    with ledger_rows.read_snapshot(db):
        start_seq, start_hash, problem = chain_start(db, rt)
        if problem:
            return asdict(ChainReport(False, 0, start_seq, start_hash, start_seq + 1, problem))
        report = walk(db, start_seq, start_hash)
        if report.intact:
            report = _against_stored_checkpoints(db, rt, report, start_seq)
    return asdict(report)


def chain_start(db: sqlite_utils.Database, rt: Runtime) -> tuple[int, str, str | None]:
    """Where verification begins: the retention anchor, if its checkpoint is really signed."""
    anchor = ledger_rows.anchor(db)
    if anchor is None:
        return 0, GENESIS_HASH, None
    start_seq, start_hash = anchor["start_seq"], anchor["start_hash"]
    row = ledger_rows.get_checkpoint(db, anchor["checkpoint_id"])
    if (
        row is None
        or (row["head_seq"], row["head_hash"]) != (start_seq, start_hash)
        or not checkpoint_is_signed(rt.keys.public_key, as_checkpoint(row))
    ):
        problem = "the retention anchor is not backed by a checkpoint signed by this server"
        return start_seq, start_hash, problem
    return start_seq, start_hash, None


def walk(
    db: sqlite_utils.Database, start_seq: int, start_hash: str, upto_seq: int | None = None
) -> ChainReport:
    """Verify entries after start_seq (up to upto_seq) against the chain's hashes."""
    return verify_fast(
        ledger_rows.iter_rendered(db, start_seq, upto_seq),
        start_seq,
        start_hash,
        lambda after: ledger_rows.iter_entries(db, after, upto_seq),
    )


def _against_stored_checkpoints(
    db: sqlite_utils.Database, rt: Runtime, report: ChainReport, start_seq: int
) -> ChainReport:
    """The first stored checkpoint the intact chain contradicts (bad signature, other hash,
    or a head beyond the ledger's end)."""
    matched = start_seq
    for row in ledger_rows.checkpoints_beyond(db, start_seq):
        if not _ours(rt, row):
            continue
        label = f"checkpoint {row['id']} (entry {row['head_seq']})"
        if not checkpoint_is_signed(rt.keys.public_key, as_checkpoint(row)):
            return replace(report, intact=False, problem=f"{label} carries an invalid signature")
        if row["head_seq"] > report.head_seq:
            return replace(
                report,
                intact=False,
                first_broken_seq=report.head_seq + 1,
                problem=f"the ledger ends at entry {report.head_seq}, before {label}: "
                "entries were cut off the tail",
            )
        if ledger_rows.hash_at(db, row["head_seq"]) != row["head_hash"]:
            return replace(
                report,
                intact=False,
                problem=f"the chain was rewritten after entry {matched}: its hash at entry "
                f"{row['head_seq']} differs from the one signed in {label}",
            )
        matched = max(matched, row["head_seq"])
    return report


def _ours(rt: Runtime, row: dict[str, Any]) -> bool:
    """Checkpoints signed with a previous key are verified with that key, not here."""
    return row["key_id"] == rt.keys.key_id


def verify_against_checkpoint(
    db: sqlite_utils.Database, rt: Runtime, document: dict[str, Any]
) -> dict[str, Any]:
    """Check an exported checkpoint's signature, then that the ledger still holds its head."""
    try:
        checkpoint = read_checkpoint(document)
    except ValueError as exc:
        raise InvalidInput(f"unreadable checkpoint: {exc}") from None
    result: dict[str, Any] = {
        "checkpoint_head_seq": checkpoint.head_seq,
        "checkpoint_head_hash": checkpoint.head_hash,
        "signature_valid": False,
        "anchor_seq": None,
        "ledger_head_seq": None,
        "entries_checked": 0,
        "first_broken_seq": None,
    }
    pem = document.get("public_key_pem")
    if pem is not None and pem.strip() != rt.keys.public_pem().strip():
        return _verdict(result, "signature", "the checkpoint names another public key")
    if not checkpoint_is_signed(rt.keys.public_key, checkpoint):
        return _verdict(
            result, "signature", "the signature does not match these values and this server's key"
        )
    result["signature_valid"] = True
    with ledger_rows.read_snapshot(db):
        start_seq, start_hash, problem = chain_start(db, rt)
        result["anchor_seq"] = start_seq
        if problem:
            return _verdict(result, "anchor", problem)
        report = walk(db, start_seq, start_hash)
        result.update(entries_checked=report.entries_checked, ledger_head_seq=report.head_seq)
        if not report.intact:
            result["first_broken_seq"] = report.first_broken_seq
            return _verdict(result, "chain", report.problem)
        return _hold_against(db, result, checkpoint.head_seq, checkpoint.head_hash, start_hash)


def _hold_against(
    db: sqlite_utils.Database, result: dict, head_seq: int, head_hash: str, start_hash: str
) -> dict[str, Any]:
    start_seq, ledger_head = result["anchor_seq"], result["ledger_head_seq"]
    if head_seq < start_seq:
        return _verdict(
            result,
            None,
            f"entries up to {start_seq} were removed under the retention rule; the chain from "
            "the signed anchor is intact",
        )
    if head_seq > ledger_head:
        result["first_broken_seq"] = ledger_head + 1
        return _verdict(
            result,
            "truncated",
            f"the ledger ends at entry {ledger_head}, before the checkpoint's entry {head_seq}",
        )
    found = start_hash if head_seq == start_seq else ledger_rows.hash_at(db, head_seq)
    if found != head_hash:
        return _verdict(
            result,
            "head_mismatch",
            f"entry {head_seq} no longer has the signed hash: an entry at or before it was "
            "edited, inserted or removed and the chain rewritten",
        )
    return _verdict(result, None, f"entry {head_seq} has the signed hash; the chain is intact")


def _verdict(result: dict[str, Any], problem: str | None, message: str | None) -> dict[str, Any]:
    return {**result, "intact": problem is None, "problem": problem, "message": message}


def staff_actions(
    db: sqlite_utils.Database, filters: dict[str, Any], after: int, limit: int
) -> dict:
    """One page of the staff action log matching the filters, oldest first."""
    rows = audit_rows.query_staff_actions(db, {**_iso_filters(filters), "after_id": after}, limit)
    return {"items": rows, "next_after": rows[-1]["id"] if len(rows) == limit else None}
