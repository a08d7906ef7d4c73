"""What retention removes: gated deletes, due evidence and borrowers, purge certificates."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlite_utils

from server.storage.connection import (
    CERTIFICATE_COLUMNS,
    CERTIFIED_FUNCTION,
    certified_by_nobody,
)
from server.storage.engine import dialect
from sync.cases import CLOSED_STATUSES

# The last collection activity of a case: its own update, its visits', its records'.
_EVIDENCE_DUE = """
SELECT c.id FROM cases c
WHERE c.updated_at < :cutoff
  AND EXISTS (SELECT 1 FROM sync_records r WHERE r.case_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM visits v WHERE v.case_id = c.id AND v.updated_at >= :cutoff)
  AND NOT EXISTS (
      SELECT 1 FROM sync_records r WHERE r.case_id = c.id AND r.received_at >= :cutoff)
  {held}
ORDER BY c.id
"""

_CLOSED = json.dumps(sorted(CLOSED_STATUSES))
_PERSONAL_DUE = """
SELECT b.id FROM borrowers b
WHERE (:purged IS NULL OR b.full_name != :purged)
  AND EXISTS (SELECT 1 FROM cases c WHERE c.borrower_id = b.id)
  AND NOT EXISTS (
      SELECT 1 FROM cases c WHERE c.borrower_id = b.id
      AND (c.status NOT IN (SELECT value FROM json_each(:closed))
           OR c.closed_at IS NULL OR c.closed_at >= :cutoff {held}))
ORDER BY b.id
"""


@contextmanager
def retention_gate(db: sqlite_utils.Database, table: str, certificate_id: int) -> Iterator[None]:
    """Open the delete guard of one append-only table inside the caller's transaction.

    The triggers honour the row only for what the named certificate covers, and only if
    certificates_honoured vouches for its signature.
    """
    if not db.conn.in_transaction:
        raise RuntimeError("retention deletes run inside a write transaction")
    db.execute(
        "INSERT INTO retention_gate (table_name, certificate_id) VALUES (?, ?)",
        [table, certificate_id],
    )
    if dialect(db) == "postgresql":
        _vouch_on_postgresql(db, certificate_id)
    yield
    db.execute("DELETE FROM retention_gate WHERE table_name = ?", [table])


def _vouch_on_postgresql(db: sqlite_utils.Database, certificate_id: int) -> None:
    """PostgreSQL's doorstep_certified() honours the signatures this transaction named in
    the setting doorstep.certified: name the certificate's if the purge's check vouches
    for it (the check runs here, in the server, with the keyring)."""
    is_signed = getattr(db.conn, "certifier", None)
    if is_signed is None:
        return
    columns = ", ".join(CERTIFICATE_COLUMNS)
    rows = list(
        db.query(f"SELECT {columns} FROM purge_certificates WHERE id = ?", [certificate_id])
    )
    if not rows or not is_signed(*(rows[0][c] for c in CERTIFICATE_COLUMNS)):
        return
    db.execute(
        "SELECT set_config('doorstep.certified', "
        "coalesce(current_setting('doorstep.certified', true), '') || ' ' || ?, true)",
        [rows[0]["signature"]],
    )


@contextmanager
def certificates_honoured(
    db: sqlite_utils.Database, is_signed: Callable[[Mapping[str, Any]], bool]
) -> Iterator[None]:
    """While inside, this connection's gate triggers accept certificates `is_signed`
    vouches for; outside, none."""
    checked: dict[tuple[Any, ...], int] = {}

    def certified(*columns: Any) -> int:
        # Called once per deleted row: the signature is checked once per certificate.
        if columns not in checked:
            fields = dict(zip(CERTIFICATE_COLUMNS, columns, strict=True))
            try:
                fields["details"] = json.loads(fields["details"])
            except (TypeError, ValueError):
                checked[columns] = 0
            else:
                checked[columns] = int(is_signed(fields))
        return checked[columns]

    if dialect(db) == "postgresql":
        db.conn.certifier = certified  # type: ignore[attr-defined]
        try:
            yield
        finally:
            db.conn.certifier = None  # type: ignore[attr-defined]
            if db.conn.in_transaction:
                db.execute("SELECT set_config('doorstep.certified', '', true)")
        return
    arity = len(CERTIFICATE_COLUMNS)
    db.conn.create_function(CERTIFIED_FUNCTION, arity, certified, deterministic=True)
    try:
        yield
    finally:
        db.conn.create_function(CERTIFIED_FUNCTION, arity, certified_by_nobody, deterministic=True)


def gate_rows(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Rows in the retention gate: none outside a purge's own transaction."""
    return list(db.query("SELECT table_name, certificate_id FROM retention_gate"))


def get_certificate(db: sqlite_utils.Database, certificate_id: int) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM purge_certificates WHERE id = ?", [certificate_id]))
    for row in rows:
        row["details"] = json.loads(row["details"])
    return rows[0] if rows else None


def evidence_due_cases(
    db: sqlite_utils.Database, cutoff: str, *, ignore_holds: bool = False
) -> list[int]:
    """Cases with stored evidence whose last collection activity is before `cutoff`."""
    held = "" if ignore_holds else "AND c.legal_hold = 0"
    return [r[0] for r in db.execute(_EVIDENCE_DUE.format(held=held), {"cutoff": cutoff})]


def count_evidence(db: sqlite_utils.Database, case_ids: list[int]) -> dict[str, int]:
    cases = json.dumps(case_ids)
    records = db.execute(
        "SELECT count(*) FROM sync_records WHERE case_id IN (SELECT value FROM json_each(?))",
        [cases],
    ).fetchone()[0]
    receipts = db.execute(
        "SELECT count(*) FROM agreement_receipts WHERE agreement_id IN (SELECT id FROM "
        "sync_records WHERE kind = 'agreement' AND case_id IN (SELECT value FROM json_each(?)))",
        [cases],
    ).fetchone()[0]
    contacts = db.execute(
        "SELECT count(*) FROM contacts WHERE case_id IN (SELECT value FROM json_each(?))", [cases]
    ).fetchone()[0]
    return {
        "sync_records": records,
        "agreement_receipts": receipts,
        "contacts": contacts,
        **{
            table: db.execute(
                f"SELECT count(*) FROM {table} WHERE case_id IN (SELECT value FROM json_each(?))",
                [cases],
            ).fetchone()[0]
            for table in _CASE_LEDGER_TABLES
        },
    }


# What was promised on a case and what was paid: evidence of whether the borrower kept their
# word, on the case's evidence clock with the records and the contact log.
_CASE_LEDGER_TABLES = ("promises", "payments")


def delete_evidence(
    db: sqlite_utils.Database, case_ids: list[int], certificate_id: int
) -> dict[str, int]:
    """Remove the cases' receipts, then their records, contact log, promises and payments;
    the caller holds the transaction."""
    cases = json.dumps(case_ids)
    with retention_gate(db, "agreement_receipts", certificate_id):
        receipts = db.execute(
            "DELETE FROM agreement_receipts WHERE agreement_id IN (SELECT id FROM sync_records "
            "WHERE kind = 'agreement' AND case_id IN (SELECT value FROM json_each(?)))",
            [cases],
        ).rowcount
    with retention_gate(db, "sync_records", certificate_id):
        records = db.execute(
            "DELETE FROM sync_records WHERE case_id IN (SELECT value FROM json_each(?))", [cases]
        ).rowcount
    # The contact log of the same cases: the same evidence, on the same clock.
    db.execute(
        "DELETE FROM contact_sources WHERE contact_id IN (SELECT id FROM contacts WHERE case_id "
        "IN (SELECT value FROM json_each(?)))",
        [cases],
    )
    contacts = db.execute(
        "DELETE FROM contacts WHERE case_id IN (SELECT value FROM json_each(?))", [cases]
    ).rowcount
    return {
        "sync_records": records,
        "agreement_receipts": receipts,
        "contacts": contacts,
        **{
            table: db.execute(
                f"DELETE FROM {table} WHERE case_id IN (SELECT value FROM json_each(?))", [cases]
            ).rowcount
            for table in _CASE_LEDGER_TABLES
        },
    }


def personal_due_borrowers(
    db: sqlite_utils.Database, cutoff: str, purged_name: str | None, *, ignore_holds: bool = False
) -> list[int]:
    """Borrowers whose cases were all closed before `cutoff`: those not yet purged, or with
    `purged_name` None, purged or not."""
    held = "" if ignore_holds else "OR c.legal_hold = 1"
    params = {"cutoff": cutoff, "purged": purged_name, "closed": _CLOSED}
    return [r[0] for r in db.execute(_PERSONAL_DUE.format(held=held), params)]


def erase_personal_data(
    db: sqlite_utils.Database, borrower_ids: list[int], values: dict[str, Any], now: str
) -> int:
    """Overwrite the borrowers' personal columns with `values`; ids and time zone stay. (The
    free text written about them goes under the notes rule: storage/retention_kinds.py.)"""
    assignments = ", ".join(f"{column} = :{column}" for column in values)
    ids = json.dumps(borrower_ids)
    return db.execute(
        f"UPDATE borrowers SET {assignments}, updated_at = :now "
        "WHERE id IN (SELECT value FROM json_each(:ids))",
        {**values, "now": now, "ids": ids},
    ).rowcount


def insert_certificate(db: sqlite_utils.Database, certificate: dict[str, Any]) -> int:
    return db.execute(
        "INSERT INTO purge_certificates (created_at, kind, rule, cutoff, removed_count, "
        "checkpoint_id, details, key_id, signature) VALUES (:created_at, :kind, :rule, :cutoff, "
        ":removed_count, :checkpoint_id, :details, :key_id, :signature)",
        {**certificate, "details": json.dumps(certificate["details"], sort_keys=True)},
    ).lastrowid


def list_certificates(
    db: sqlite_utils.Database, after_id: int, limit: int, kind: str | None = None
) -> list[dict[str, Any]]:
    where, params = "id > :after", {"after": after_id, "limit": limit}
    if kind is not None:
        where, params["kind"] = where + " AND kind = :kind", kind
    rows = list(
        db.query(f"SELECT * FROM purge_certificates WHERE {where} ORDER BY id LIMIT :limit", params)
    )
    for row in rows:
        row["details"] = json.loads(row["details"])
    return rows


def ledger_certificates_for_anchor(
    db: sqlite_utils.Database, checkpoint_id: int
) -> list[dict[str, Any]]:
    """Ledger purge certificates that name this checkpoint as the chain's new anchor."""
    rows = list(
        db.query(
            "SELECT * FROM purge_certificates WHERE kind = 'exposure_ledger' "
            "AND CAST(json_extract(details, '$.anchor_checkpoint_id') AS INTEGER) = ? ORDER BY id",
            [checkpoint_id],
        )
    )
    for row in rows:
        row["details"] = json.loads(row["details"])
    return rows
