"""The legal evidence pack: a case's evidence as a BagIt bag (RFC 8493), built with the
`bagit` library, for a court or an auditor.

Building one is a disclosure. In one transaction, before any file is written: one exposure-
ledger entry for the borrower (purpose legal_escalation, the facts the pack's sections
carry), the case put under legal hold through the case lifecycle (its history and the staff
log say so), a signed checkpoint at the ledger head (so every entry the pack proves,
including this one, has a checkpoint to be checked against) and a staff-log action. Then the
sections write their files from one read snapshot, blobs streamed in chunks; bagit writes
the manifests; the README is added as a tag file; a second staff-log action records the
finished bag's fingerprint (the SHA-256 of its tagmanifest).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bagit
import sqlite_utils

from server.clock import to_iso
from server.domain.disclosure import LEGAL_ESCALATION
from server.errors import Conflict, Forbidden, InvalidInput, NotFound
from server.runtime import Caller, Runtime
from server.services import checkpoints, exposure
from server.services.case_lifecycle import apply_change, stop_visits
from server.services.evidence_readme import readme_text
from server.services.evidence_sections import SECTIONS, PackContext, Section
from server.services.staff_log import log_action
from server.storage import cases as case_rows
from server.storage import evidence as evidence_rows
from server.storage import ledger as ledger_rows
from server.storage.connection import transaction
from sync.cases import LEGAL_HOLD

MAX_REASON = 500
_BAGGING = threading.Lock()


@dataclass(frozen=True)
class BuiltPack:
    """A finished bag on disk and what identifies it."""

    path: Path
    pack_id: str
    case_id: int
    borrower_id: int
    ledger_seq: int
    checkpoint_id: int
    tagmanifest_sha256: str
    payload_oxum: str
    sections: tuple[str, ...]


def sections_for(rt: Runtime, role: str) -> list[Section]:
    """The sections this role's disclosure policy lets a pack carry, in order."""
    # Named for the purpose, never by a role's "*" (its card fields for any other purpose).
    allowed = frozenset(rt.disclosure.rules.get(role, {}).get(LEGAL_ESCALATION, ()))
    if not allowed:
        raise Forbidden("your role may not build evidence packs", field="role")
    return [section for section in SECTIONS if section.facts <= allowed]


def build_pack(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    case_id: int,
    reason: str,
    out_dir: Path,
) -> BuiltPack:
    """Ledger, hold and build the evidence pack of a case under `out_dir`; see the module."""
    principal = caller.principal
    if principal is None:
        raise Forbidden("an evidence pack is built by a named person", field="by")
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidInput(f"give the legal matter, 1-{MAX_REASON} characters", field="reason")
    sections = sections_for(rt, principal.role)
    facts = sorted(set().union(*(section.facts for section in sections)))
    stamp = caller.now.strftime("%Y%m%dT%H%M%SZ")
    pack_id = f"evidence-case-{case_id}-{stamp}"
    bag_dir = out_dir / pack_id
    if bag_dir.exists():
        raise Conflict(f"{bag_dir} already exists", field="out_dir")
    with transaction(db):
        before = case_rows.get_case(db, case_id)
        if before is None:
            raise NotFound("no such case", case_id=case_id)
        borrower = case_rows.get_borrower(db, before["borrower_id"]) or {}
        exposure.record(db, [_entry(caller, before, facts)])
        ledger_seq = ledger_rows.head(db)[0]
        change = apply_change(
            db,
            rt,
            caller,
            before,
            status=None,
            flags={LEGAL_HOLD: True},
            reason=f"evidence pack: {reason}",
            source="evidence_pack",
        )
        stop_visits(db, rt, caller, [change])
        checkpoint = checkpoints.checkpoint_at_head(db, rt, caller.now, "evidence pack")
        log_action(
            db,
            caller,
            "evidence_pack_built",
            "case",
            case_id,
            {
                "pack_id": pack_id,
                "borrower_id": borrower["id"],
                "ledger_seq": ledger_seq,
                "checkpoint_id": checkpoint["id"],
                "sections": [s.name for s in sections],
                "legal_hold_set": "flags.legal_hold" in change.changed,
                "reason_given": True,
            },
        )
    checkpoints.publish_checkpoints(db, rt)
    meta = {
        "pack_id": pack_id,
        "built_at": to_iso(caller.now),
        "built_by": {
            "user_id": principal.user_id,
            "username": principal.username,
            "role": principal.role,
        },
        "reason": reason,
        "request_id": caller.request_id,
        "case_id": case_id,
        "borrower_id": borrower["id"],
        "ledger_seq_of_this_disclosure": ledger_seq,
        "checkpoint_id": checkpoint["id"],
        "facts_disclosed": facts,
        "sections": [s.name for s in sections],
        "sections_left_out_by_policy": [s.name for s in SECTIONS if s not in sections],
    }
    bag_dir.mkdir(parents=True)
    try:
        bag = _write_bag(db, rt, change.case, borrower, bag_dir, sections, meta)
    except BaseException:
        shutil.rmtree(bag_dir, ignore_errors=True)
        raise
    digest = _sha256_file(bag_dir / "tagmanifest-sha256.txt")
    oxum = bag.info.get("Payload-Oxum", "")
    with transaction(db):
        log_action(
            db,
            caller,
            "evidence_pack_sealed",
            "case",
            case_id,
            {"pack_id": pack_id, "tagmanifest_sha256": digest, "payload_oxum": oxum},
        )
    return BuiltPack(
        bag_dir,
        pack_id,
        case_id,
        borrower["id"],
        ledger_seq,
        checkpoint["id"],
        digest,
        oxum,
        tuple(meta["sections"]),
    )


def archive_pack(built: BuiltPack) -> Path:
    """The bag as one uncompressed tar beside it (photos are compressed already)."""
    made = shutil.make_archive(
        str(built.path), "tar", root_dir=built.path.parent, base_dir=built.path.name
    )
    return Path(made)


def _entry(caller: Caller, case: dict[str, Any], facts: list[str]) -> dict[str, Any]:
    principal = caller.principal
    assert principal is not None
    return {
        "occurred_at": to_iso(caller.now),
        "user_id": principal.user_id,
        "role": principal.role,
        "device_id": principal.device_id,
        "borrower_id": case["borrower_id"],
        "case_id": case["id"],
        "visit_id": None,
        "fields": set(facts),
        "purpose": LEGAL_ESCALATION,
        "endpoint": caller.endpoint,
        "request_id": caller.request_id,
        "outcome": "served",
    }


def _write_bag(
    db: sqlite_utils.Database,
    rt: Runtime,
    case: dict[str, Any],
    borrower: dict[str, Any],
    bag_dir: Path,
    sections: list[Section],
    meta: dict[str, Any],
) -> bagit.Bag:
    with ledger_rows.read_snapshot(db):
        pack = PackContext(db, rt, case, borrower, bag_dir)
        pack.records = evidence_rows.case_records(db, case["id"])
        for section in sections:
            section.write(pack)
        pack.write_json("pack.json", {**meta, "contents": pack.contents})
    # make_bag changes the process's working directory while it runs: one bag at a time,
    # and every path the server uses is absolute (config.load_settings).
    with _BAGGING:
        return _make_bag(rt, bag_dir, meta, case)


def _make_bag(rt: Runtime, bag_dir: Path, meta: dict[str, Any], case: dict[str, Any]) -> bagit.Bag:
    bag = bagit.make_bag(
        str(bag_dir),
        {
            "Source-Organization": rt.settings["CONTROLLER_NAME"],
            "External-Identifier": meta["pack_id"],
            "External-Description": f"Doorstep evidence pack for case {case['external_id']}",
            "Internal-Sender-Identifier": meta["request_id"],
            "Contact-Name": meta["built_by"]["username"],
        },
        checksums=["sha256"],
    )
    (bag_dir / "README.txt").write_text(readme_text(meta), encoding="utf-8")
    bag.save()  # the tag manifest now covers the README too
    return bag


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def pack_summary(built: BuiltPack) -> str:
    """One JSON line describing a finished pack (for the CLI)."""
    return json.dumps(
        {
            "pack": str(built.path),
            "pack_id": built.pack_id,
            "case_id": built.case_id,
            "ledger_seq": built.ledger_seq,
            "checkpoint_id": built.checkpoint_id,
            "tagmanifest_sha256": built.tagmanifest_sha256,
            "payload_oxum": built.payload_oxum,
            "sections": list(built.sections),
        }
    )
