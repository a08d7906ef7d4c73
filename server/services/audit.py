"""What privacy officers ask of the ledger and the staff log."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Any

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from server.clock import to_iso
from server.domain.ledger import (
    GENESIS_HASH,
    ChainReport,
    Checkpoint,
    checkpoint_is_signed,
    read_checkpoint,
    verify_fast,
)
from server.domain.retention import certificate_is_signed
from server.errors import InvalidInput
from server.runtime import Runtime
from server.services import keyring
from server.services.checkpoints import as_checkpoint, checkpoint_dir
from server.storage import audit as audit_rows
from server.storage import ledger as ledger_rows
from server.storage import ledger_files
from server.storage import retention as retention_rows
from sync.signing import format_timestamp, public_key_pem


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


def verify(db: sqlite_utils.Database, rt: Runtime, *, external: bool = True) -> dict[str, Any]:
    """Walk the chain from its anchor; name the first entry altered, inserted or removed.

    Then hold it against every stored checkpoint and every checkpoint in the external
    files (signed by a keyring key), so a rewritten chain, a cut-off tail or removed
    checkpoints are reported too, and say up to which entry the external files vouch.
    `external=False` (a backup's copy, behind the live files by nature) skips the files.
    """
    with ledger_rows.read_snapshot(db):
        trust = keyring.trusted_keys(db, rt)
        start_seq, start_hash, problem = chain_start(db, rt, trust.keys)
        if problem:
            report = ChainReport(False, 0, start_seq, start_hash, start_seq + 1, problem)
        else:
            report = walk(db, start_seq, start_hash)
        signatures = _Signatures(trust.keys)
        stored = _against_stored_checkpoints(db, signatures, report, start_seq)
        outside = (
            _against_external(db, rt, signatures, stored.report, start_seq, start_hash)
            if external
            else None
        )
        findings = [
            *([stored.report.problem] if stored.report.problem else []),
            *trust.findings,
            *stored.findings,
            *(outside.findings if outside else []),
            *_guard_findings(db, trust.keys),
            *_backdated(db, stored.latest),
        ]
    return _chain_verdict(stored, outside, findings, start_seq)


@dataclass
class _Signatures:
    """Checkpoint signatures checked against the trusted keys, each text at most once."""

    keys: dict[str, Ed25519PublicKey]
    seen: dict[tuple[Any, ...], bool] = field(default_factory=dict)

    def problem(self, checkpoint: Checkpoint) -> str | None:
        key = self.keys.get(checkpoint.key_id)
        if key is None:
            return f"signed by key {checkpoint.key_id}, which is not in the keyring"
        memo = (checkpoint.message(), checkpoint.signature)
        if memo not in self.seen:
            self.seen[memo] = checkpoint_is_signed(key, checkpoint)
        return None if self.seen[memo] else "carries an invalid signature"


@dataclass
class _Stored:
    report: ChainReport
    checked: int = 0
    signed_seq: int | None = None
    latest: Checkpoint | None = None  # the furthest along the chain (the newest among equals)
    findings: list[str] = field(default_factory=list)


@dataclass
class _External:
    checked: int = 0
    vouched_seq: int | None = None
    vouched_at: str | None = None
    findings: list[str] = field(default_factory=list)


def chain_start(
    db: sqlite_utils.Database, rt: Runtime, keys: dict[str, Ed25519PublicKey] | None = None
) -> tuple[int, str, str | None]:
    """Where verification begins: the retention anchor, if a keyring key really signed its
    checkpoint and the ledger purge certificate that set it."""
    anchor = ledger_rows.anchor(db)
    if anchor is None:
        return 0, GENESIS_HASH, None
    keys = keyring.trusted_keys(db, rt).keys if keys is None else keys
    start_seq, start_hash = anchor["start_seq"], anchor["start_hash"]
    row = ledger_rows.get_checkpoint(db, anchor["checkpoint_id"])
    if (
        row is None
        or (row["head_seq"], row["head_hash"]) != (start_seq, start_hash)
        or _Signatures(keys).problem(as_checkpoint(row)) is not None
    ):
        problem = "the retention anchor is not backed by a checkpoint signed by this server"
        return start_seq, start_hash, problem
    if not _anchor_certified(db, keys, anchor):
        problem = "the retention anchor is not backed by a signed ledger purge certificate"
        return start_seq, start_hash, problem
    return start_seq, start_hash, None


def _anchor_certified(
    db: sqlite_utils.Database, keys: dict[str, Ed25519PublicKey], anchor: dict[str, Any]
) -> bool:
    for certificate in retention_rows.ledger_certificates_for_anchor(db, anchor["checkpoint_id"]):
        key = keys.get(certificate["key_id"])
        if (
            key is not None
            and certificate["details"].get("to_seq") == anchor["start_seq"]
            and certificate_is_signed(key, certificate)
        ):
            return True
    return False


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
    db: sqlite_utils.Database, signatures: _Signatures, report: ChainReport, start_seq: int
) -> _Stored:
    """Every stored checkpoint must carry a keyring key's signature; on an intact chain the
    first one it contradicts (other hash, or a head beyond the ledger's end) is the problem."""
    stored = _Stored(report)
    for row in ledger_rows.checkpoints_after_id(db, 0):
        stored.checked += 1
        label = f"checkpoint {row['id']} (entry {row['head_seq']})"
        checkpoint = as_checkpoint(row)
        problem = signatures.problem(checkpoint)
        if problem:
            stored.findings.append(f"{label} {problem}")
            continue
        if stored.latest is None or (checkpoint.head_seq, checkpoint.created_at) > (
            stored.latest.head_seq,
            stored.latest.created_at,
        ):
            stored.latest = checkpoint
        if not stored.report.intact or row["head_seq"] <= start_seq:
            continue
        if row["head_seq"] > report.head_seq:
            stored.report = replace(
                stored.report,
                intact=False,
                first_broken_seq=report.head_seq + 1,
                problem=f"the ledger ends at entry {report.head_seq}, before {label}: "
                "entries were cut off the tail",
            )
        elif ledger_rows.hash_at(db, row["head_seq"]) != row["head_hash"]:
            matched = stored.signed_seq or start_seq
            stored.report = replace(
                stored.report,
                intact=False,
                problem=f"the chain was rewritten after entry {matched}: its hash at entry "
                f"{row['head_seq']} differs from the one signed in {label}",
            )
        else:
            stored.signed_seq = max(stored.signed_seq or 0, row["head_seq"])
    return stored


# How long a request may take from the time it stamps on its entries to its commit: an
# entry stamped earlier than this before a checkpoint that does not cover it was backdated.
_REQUEST_SLACK = timedelta(minutes=2)


def _backdated(db: sqlite_utils.Database, latest: Checkpoint | None) -> list[str]:
    """An entry after the last checkpoint that claims to have occurred well before it was
    signed was written afterwards with a false time: a forged tail."""
    if latest is None:
        return []
    cutoff = latest.created_at - _REQUEST_SLACK
    seq = ledger_rows.first_entry_before(db, latest.head_seq, to_iso(cutoff))
    if seq is None:
        return []
    return [
        f"entry {seq} comes after the checkpoint of entry {latest.head_seq} signed at "
        f"{format_timestamp(latest.created_at)} but claims an earlier time: it was appended "
        "later with a false time"
    ]


def _against_external(
    db: sqlite_utils.Database,
    rt: Runtime,
    signatures: _Signatures,
    report: ChainReport,
    start_seq: int,
    start_hash: str,
) -> _External | None:
    """Each checkpoint in the external files: signed by a keyring key, still stored in the
    database unchanged, and still matching the chain; the furthest match is vouched for."""
    directory = checkpoint_dir(rt)
    if directory is None:
        return None
    lines = list(ledger_files.read_checkpoints(directory))
    ids = [r["id"] for _, _, r in lines if r is not None and type(r.get("id")) is int]
    stored = ledger_rows.checkpoints_by_id(db, ids)
    outside = _External()
    for name, number, record in lines:
        where = f"{name} line {number}"
        try:
            checkpoint = read_checkpoint(record or {})
            if record is None or record.get("type") != "ledger_checkpoint":
                raise ValueError("not a checkpoint record")
        except ValueError as exc:
            outside.findings.append(f"{where} is not a readable checkpoint: {exc}")
            continue
        outside.checked += 1
        label = f"external checkpoint {record.get('id')} (entry {checkpoint.head_seq})"
        problem = signatures.problem(checkpoint)
        row = stored.get(record.get("id"))
        if problem:
            outside.findings.append(f"{label} in {where} {problem}")
            continue
        if row is None:
            outside.findings.append(
                f"{label} is in the external files but not in the database: stored checkpoints "
                "were removed"
            )
        elif as_checkpoint(row) != checkpoint:
            outside.findings.append(f"stored checkpoint {row['id']} differs from {label}")
        position = _position_problem(db, checkpoint, report, start_seq, start_hash)
        if position:
            outside.findings.append(f"{label}: {position}")
        elif checkpoint.head_seq >= (outside.vouched_seq or 0):
            outside.vouched_seq = checkpoint.head_seq
            outside.vouched_at = format_timestamp(checkpoint.created_at)
    return outside


def _position_problem(
    db: sqlite_utils.Database,
    checkpoint: Checkpoint,
    report: ChainReport,
    start_seq: int,
    start_hash: str,
) -> str | None:
    seq = checkpoint.head_seq
    if seq < start_seq:
        return None  # removed under the retention rule, behind the signed anchor
    if seq > report.head_seq:
        return f"the ledger ends at entry {report.head_seq}: entries were cut off the tail"
    found = start_hash if seq == start_seq else ledger_rows.hash_at(db, seq)
    if found != checkpoint.head_hash:
        return f"entry {seq} no longer has the signed hash: the chain was rewritten"
    return None


# The append-only guards; the gated delete triggers must call the certificate check.
_GATED = ("exposure_ledger", "sync_records", "agreement_receipts")
_APPEND_ONLY = (*_GATED, "ledger_checkpoints", "purge_certificates", "ledger_keys", "staff_audit")
_GUARDS = {
    f"{table}_no_{verb}": verb == "delete" and table in _GATED
    for table in _APPEND_ONLY
    for verb in ("update", "delete")
}
# A stored record's body changes only by a notes redaction under a signed certificate; a
# blob a stored record references is never deleted (migration 0013).
_GUARDS.update(sync_records_no_update=True, blobs_no_delete=False, blob_references_no_delete=False)
# The triggers that keep blob references with their records: without them a new record's
# photo would look unreferenced and expire.
_FOLLOWERS = (
    "sync_records_reference_attachments",
    "sync_records_reference_signatures",
    "sync_records_references_follow",
)


def _raises(sql: str) -> bool:
    """Whether a trigger's text refuses the change (SQLite's RAISE, PL/pgSQL's)."""
    return "RAISE(ABORT" in sql or "RAISE EXCEPTION" in sql


def _guard_findings(db: sqlite_utils.Database, keys: dict[str, Ed25519PublicKey]) -> list[str]:
    """Dropped or weakened append-only triggers, and rows left in the retention gate (it
    is empty outside a purge's own transaction)."""
    findings = []
    present = ledger_rows.triggers(db)
    findings.extend(f"the trigger {name} was dropped" for name in _FOLLOWERS if name not in present)
    for name, gated in _GUARDS.items():
        sql = present.get(name)
        if sql is None:
            findings.append(f"the append-only trigger {name} was dropped")
        elif not _raises(sql) or (gated and "doorstep_certified(" not in sql):
            findings.append(f"the append-only trigger {name} was altered")
    for gate in retention_rows.gate_rows(db):
        certificate = (
            retention_rows.get_certificate(db, gate["certificate_id"])
            if gate["certificate_id"] is not None
            else None
        )
        key = keys.get(certificate["key_id"]) if certificate else None
        state = (
            "signed"
            if key is not None and certificate_is_signed(key, certificate)
            else "no valid certificate"
        )
        findings.append(
            f"the retention gate holds a row for {gate['table_name']} outside a purge "
            f"(certificate {gate['certificate_id']}: {state}): it was inserted by hand"
        )
    return findings


def _chain_verdict(
    stored: _Stored, outside: _External | None, findings: list[str], start_seq: int
) -> dict[str, Any]:
    report = stored.report
    head = report.head_seq
    vouched = outside.vouched_seq if outside else None
    if outside is None:
        coverage = (
            "no external checkpoint files were read: only the checkpoints stored in the "
            f"database vouch for the ledger, up to entry {stored.signed_seq or 0}"
        )
    elif vouched is None:
        coverage = (
            f"no external checkpoint matches the ledger yet: entries after seq {start_seq} "
            "are not yet covered by any checkpoint"
        )
    elif vouched >= head:
        coverage = f"the external checkpoints vouch for every entry, up to seq {vouched}"
    else:
        coverage = (
            f"the external checkpoints vouch for entries up to seq {vouched} (signed "
            f"{outside.vouched_at}); entries after seq {vouched} are not yet covered by any "
            "checkpoint"
        )
    return {
        **asdict(report),
        "intact": not findings,
        "problem": findings[0] if findings else None,
        "findings": findings,
        "checkpoints_checked": stored.checked,
        "signed_seq": stored.signed_seq,
        "external_checkpoints_checked": outside.checked if outside else 0,
        "vouched_seq": vouched,
        "vouched_at": outside.vouched_at if outside else None,
        "unvouched_entries": max(0, head - (vouched or 0)),
        "coverage": coverage,
    }


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
    with ledger_rows.read_snapshot(db):
        keys = keyring.trusted_keys(db, rt).keys
    key = keys.get(checkpoint.key_id)
    pem = document.get("public_key_pem")
    if key is None or (pem is not None and pem.strip() != public_key_pem(key).strip()):
        return _verdict(result, "signature", "the checkpoint names a key not in the keyring")
    if not checkpoint_is_signed(key, checkpoint):
        return _verdict(
            result, "signature", "the signature does not match these values and the named key"
        )
    result["signature_valid"] = True
    with ledger_rows.read_snapshot(db):
        start_seq, start_hash, problem = chain_start(db, rt, keys)
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
