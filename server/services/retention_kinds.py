"""The retention plans and removals of attachments and free-text notes.

Called by server/services/retention.py inside its one purge transaction, after the evidence
of the run is removed: a blob goes in the run that removes its last referencing record, and
a record due for removal is not redacted first. docs/retention.md explains the choices.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlite_utils

from server.clock import to_iso
from server.domain.retention import REDACTED_NOTE, RetentionRules
from server.domain.retention_coverage import NOTE_COLUMNS, RECORD_NOTE_KEYS
from server.storage import retention as retention_rows
from server.storage import retention_kinds as retention_kind_rows
from sync.signing import format_timestamp

Plan = dict[str, Any]

_COLUMNS = tuple((note.table, note.column, note.owner) for note in NOTE_COLUMNS)


def plan_attachments(
    db: sqlite_utils.Database, rules: RetentionRules, now: datetime, evidence_cases: list[int]
) -> Plan:
    """Blobs whose last referencing record goes in this run, blobs no record references past
    their time, and idle unfinished uploads."""
    cutoffs = rules.attachment_cutoffs(now)
    with_records = retention_kind_rows.blobs_of_cases(db, evidence_cases)
    unreferenced = retention_kind_rows.unreferenced_blobs(
        db, to_iso(cutoffs["unreferenced_before"])
    )
    uploads, chunks = retention_kind_rows.idle_uploads(db, to_iso(cutoffs["uploads_idle_before"]))
    blobs = with_records + unreferenced
    details = {
        "blobs_with_their_records": len(with_records),
        "blobs_unreferenced": len(unreferenced),
        "blob_bytes": retention_kind_rows.blob_bytes(db, blobs),
        "uploads_abandoned": len(uploads),
        "upload_chunks": chunks,
        **{name: format_timestamp(at) for name, at in cutoffs.items()},
    }
    return {
        "count": len(blobs) + len(uploads),
        "details": details,
        "ids": blobs,
        "uploads": uploads,
    }


def plan_notes(db: sqlite_utils.Database, cutoff: str, evidence_cases: list[int]) -> Plan:
    """Free text about borrowers past their personal-data clock (purged before or now); a
    record removed in this run is not counted."""
    borrowers = retention_rows.personal_due_borrowers(db, cutoff, None)
    held = retention_rows.personal_due_borrowers(db, cutoff, None, ignore_holds=True)
    counts, about = retention_kind_rows.count_notes(
        db, borrowers, _COLUMNS, RECORD_NOTE_KEYS, evidence_cases, REDACTED_NOTE
    )
    details = {
        "borrowers": len(about),
        "borrowers_held": len(held) - len(borrowers),
        "marker": REDACTED_NOTE,
        **counts,
    }
    return {
        "count": sum(counts.values()),
        "details": details,
        "ids": about,
        "borrowers": borrowers,
        "excluded_cases": evidence_cases,
    }


def remove_attachments(db: sqlite_utils.Database, plan: Plan) -> int:
    """Delete the planned blobs (their records are gone by now) and uploads; how many."""
    return retention_kind_rows.delete_blobs(db, plan["ids"]) + (
        retention_kind_rows.delete_uploads(db, plan["uploads"])
    )


def remove_notes(db: sqlite_utils.Database, plan: Plan, now: datetime) -> int:
    """Empty the planned free-text columns and redact the records' body notes; how many."""
    if not plan["count"]:
        return 0
    borrowers = plan["borrowers"]
    erased = retention_kind_rows.erase_notes(db, borrowers, _COLUMNS)
    for key in RECORD_NOTE_KEYS:
        erased += retention_kind_rows.redact_record_notes(
            db,
            borrowers,
            key,
            plan["excluded_cases"],
            REDACTED_NOTE,
            plan["certificate_id"],
            to_iso(now),
        )
    return erased
