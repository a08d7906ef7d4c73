"""Which retention rule reaches each table and column: the one list a new table joins.

Every table of the store is named here, either with the kind whose clock removes its rows,
or as kept with each column sorted into "erased by a kind's clock" or "kept, with the
reason". tests/unit/test_retention_coverage.py holds the migrated schema against this list,
so a table or column added without a rule fails the build until someone decides its clock.

To give a new table a clock (the contact log, payments): add its entry to COVERAGE; a free
text column about a borrower joins NOTE_COLUMNS (the purge then empties it at the
personal-data clock, counted in the notes certificate); rows on a clock of their own need
a kind in server/domain/retention.py and a plan in server/services/retention.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from server.domain.retention import (
    ATTACHMENTS,
    EVIDENCE,
    LEDGER,
    NOTES,
    PERSONAL,
    PERSONAL_COLUMNS,
)


@dataclass(frozen=True)
class NoteColumn:
    """A free-text column staff or phones fill about a borrower, and how a row leads to
    the borrower: the row's own `borrower_id`, or its `case_id`."""

    table: str
    column: str
    owner: Literal["borrower", "case"]


# Emptied (set to NULL) when the borrower's personal-data clock runs out.
NOTE_COLUMNS: tuple[NoteColumn, ...] = (
    NoteColumn("borrower_requests", "note", "borrower"),
    NoteColumn("borrower_requests", "evidence", "borrower"),
    NoteColumn("case_history", "reason", "case"),
    NoteColumn("contacts", "notes", "case"),
    NoteColumn("visits", "notes", "case"),
    NoteColumn("visits", "notice_note", "case"),
    NoteColumn("visits", "cancel_reason", "case"),
)
# Keys of a stored record's body replaced by the marker at the same clock.
RECORD_NOTE_KEYS: tuple[str, ...] = ("notes",)


@dataclass(frozen=True)
class TableRetention:
    """What retention does to one table."""

    rows: str | None  # the kind whose clock removes whole rows; None: rows are kept
    why: str
    erased: Mapping[str, str] = field(default_factory=dict)  # column -> kind that empties it
    kept: tuple[str, ...] = ()  # for kept rows: every other column (no borrower value)


def _columns(names: str) -> tuple[str, ...]:
    return tuple(names.split())


_STAFF = "staff accounts and their sessions, not borrower data"
_NO_BORROWER = "holds no borrower data"
_NOTES = {note.column: NOTES for note in NOTE_COLUMNS}

COVERAGE: dict[str, TableRetention] = {
    "exposure_ledger": TableRetention(LEDGER, "removed as a prefix of the chain"),
    "sync_records": TableRetention(
        EVIDENCE,
        "removed with their case's evidence; body notes redacted at the personal clock",
        erased={"body": NOTES},
    ),
    "agreement_receipts": TableRetention(EVIDENCE, "removed with their agreement"),
    "contacts": TableRetention(
        EVIDENCE,
        "the contact log is the case's compliance evidence: removed with its records; the "
        "notes emptied at the personal clock",
        erased={"notes": NOTES},
    ),
    "contact_sources": TableRetention(EVIDENCE, "removed with their contact"),
    "flag_reviews": TableRetention(EVIDENCE, "removed with their record (trigger)"),
    "flag_review_history": TableRetention(EVIDENCE, "removed with their record (trigger)"),
    "blob_references": TableRetention(EVIDENCE, "removed with their record (trigger)"),
    "record_redactions": TableRetention(EVIDENCE, "removed with their record (trigger)"),
    "blobs": TableRetention(ATTACHMENTS, "with the last referencing record, or unreferenced"),
    "blob_owners": TableRetention(ATTACHMENTS, "removed with their blob"),
    "blob_uploads": TableRetention(ATTACHMENTS, "unfinished uploads expire when idle"),
    "blob_chunks": TableRetention(ATTACHMENTS, "removed with their upload"),
    "borrowers": TableRetention(
        None,
        "the id stays so evidence and ledger entries keep their subject",
        erased=dict.fromkeys(PERSONAL_COLUMNS, PERSONAL),
        kept=_columns("id external_id time_zone created_at updated_at"),
    ),
    "borrower_requests": TableRetention(
        None,
        "what was asked, when and through whom: the structured facts stay as evidence",
        erased={"note": NOTES, "evidence": NOTES},
        kept=_columns(
            "id borrower_id kind channel window_start window_end weekdays valid_from valid_until "
            "source visit_id taken_by taken_at recorded_at withdrawn_at withdrawal_source "
            "withdrawn_by withdrawal_recorded_at"
        ),
    ),
    "case_history": TableRetention(
        None,
        "status and flags over time, keyed to a pseudonymous borrower",
        erased={"reason": NOTES},
        kept=_columns("id case_id version status flags source changed_at changed_by"),
    ),
    "cases": TableRetention(
        None,
        "the bank's loan facts, keyed to a borrower whose personal data the personal clock "
        "erases; the compliance evidence needs the case it is about",
        kept=_columns(
            "id external_id borrower_id product overdue_amount currency days_past_due "
            "last_payment_date last_payment_amount hardship do_not_visit legal_hold status "
            "closed_at content_hash version created_at updated_at dispute deceased"
        ),
    ),
    "visits": TableRetention(
        None,
        "the visit register (who went where when) is evidence for the records; its free text "
        "goes at the personal clock",
        erased={k: v for k, v in _NOTES.items() if k in ("notes", "notice_note", "cancel_reason")},
        kept=_columns(
            "id case_id agent_id visit_date window_start window_end route_order purpose status "
            "notice_kind notice_given_at version created_at updated_at created_by updated_by "
            "last_outcome attempts last_attempt_at"
        ),
    ),
    "payments": TableRetention(
        EVIDENCE,
        "what was paid on a case: evidence of a promise or instalment kept, removed with the "
        "case's evidence",
    ),
    "promises": TableRetention(
        EVIDENCE, "what was promised on a case, removed with the case's evidence"
    ),
    "visit_history": TableRetention(
        None,
        "who had a visit when: ids, dates and statuses",
        kept=_columns("id visit_id version agent_id visit_date status changed_at changed_by"),
    ),
    "device_cards": TableRetention(
        None,
        "which card a phone held and whether it confirmed the purge: ids, a digest, times",
        kept=_columns(
            "device_id visit_id borrower_id case_id card_digest delivered_pull delivered_at "
            "expires_at purge_reason purge_ordered_at purge_confirmed_at"
        ),
    ),
    "sync_rejections": TableRetention(
        None,
        "refusals written by the server (reason code, message); the body is never kept",
        kept=_columns("id record_id digest agent_id device_id reason message received_at kind"),
    ),
    "staff_audit": TableRetention(
        None,
        "the staff log names what changed and who changed it, never borrower values or why; "
        "no purge removes it",
        kept=_columns(
            "id occurred_at user_id username role action target_type target_id details request_id "
            "address"
        ),
    ),
    "import_runs": TableRetention(
        None,
        "counts of an import and its file name",
        kept=_columns(
            "id started_at user_id source format total_rows created updated unchanged rejected"
        ),
    ),
    "watermelon_pulls": TableRetention(
        None,
        "where a phone's WatermelonDB pulls left it: ids, positions, times; each device "
        "keeps those of the last DOORSTEP_WATERMELON_STAMP_TTL_S and its latest",
        kept=_columns("device_id stamp cursor rejection_seq purges pulled_at"),
    ),
    "device_sync": TableRetention(
        None,
        _NO_BORROWER,
        kept=_columns(
            "device_id pull_count last_pull_at last_push_at clock_skew_s queued_count "
            "oldest_queued_at reported_at"
        ),
    ),
    "ledger_checkpoints": TableRetention(
        None,
        _NO_BORROWER,
        kept=_columns("id created_at head_seq head_hash key_id signature reason"),
    ),
    "ledger_anchor": TableRetention(
        None, _NO_BORROWER, kept=("id", "checkpoint_id", "start_seq", "start_hash")
    ),
    "ledger_keys": TableRetention(
        None,
        _NO_BORROWER,
        kept=_columns("key_id public_key_pem added_at added_by endorsed_by endorsement"),
    ),
    "purge_certificates": TableRetention(
        None,
        "kinds, counts and rules, never removed values",
        kept=_columns(
            "id created_at kind rule cutoff removed_count checkpoint_id details key_id signature"
        ),
    ),
    "retention_gate": TableRetention(None, _NO_BORROWER, kept=("table_name", "certificate_id")),
    "schema_migrations": TableRetention(None, _NO_BORROWER, kept=("version", "name", "applied_at")),
    "day_close": TableRetention(None, _NO_BORROWER, kept=("id", "closed_through")),
    # Keys are client addresses and device or user ids, refilled within a minute.
    "rate_buckets": TableRetention(
        None, _NO_BORROWER, kept=("key", "tokens", "updated_at", "allowed")
    ),
    "users": TableRetention(
        None,
        _STAFF,
        kept=_columns(
            "id username password_hash role display_name active created_at must_change_password "
            "password_expires_at"
        ),
    ),
    "agents": TableRetention(
        None,
        _STAFF,
        kept=_columns("user_id badge_number region home_lat home_lon time_zone"),
    ),
    "devices": TableRetention(
        None,
        _STAFF,
        kept=_columns(
            "id user_id status registered_at revoked_at revoked_by revoke_reason wipe_confirmed_at "
            "last_seen_at"
        ),
    ),
    "refresh_tokens": TableRetention(
        None,
        _STAFF,
        kept=_columns(
            "token_hash family_id user_id device_id issued_at expires_at used_at revoked_at"
        ),
    ),
    "sessions": TableRetention(
        None,
        _STAFF,
        kept=_columns("id user_id device_id started_at ended_at end_reason"),
    ),
    "login_failures": TableRetention(None, _STAFF, kept=("id", "username", "address", "failed_at")),
    "login_pair_failures": TableRetention(
        None, _STAFF, kept=("username", "address", "failures", "last_failed_at")
    ),
    "role_grants": TableRetention(
        None,
        _STAFF,
        kept=_columns(
            "id user_id kind status requested_by requested_at reason decided_by decided_at "
            "decision_note"
        ),
    ),
}


def uncovered(schema: Mapping[str, Sequence[str]]) -> list[str]:
    """What in `schema` (table -> columns) no retention rule reaches and nobody exempted;
    empty when every table and column is accounted for."""
    findings = []
    for table, columns in sorted(schema.items()):
        if table.startswith("sqlite_"):
            continue
        rule = COVERAGE.get(table)
        if rule is None:
            findings.append(f"table {table}: no retention rule and no exemption")
            continue
        unknown = sorted(set(rule.erased) - set(columns))
        findings.extend(f"{table}.{column}: named but not in the schema" for column in unknown)
        if rule.rows is None:
            declared = set(rule.erased) | set(rule.kept)
            findings.extend(
                f"{table}.{column}: its row is kept and no rule erases the column"
                for column in columns
                if column not in declared
            )
    findings.extend(f"table {table}: gone from the schema" for table in COVERAGE.keys() - schema)
    return findings
