"""What an evidence pack reads: a case's field records, blobs streamed in chunks, a
borrower's ledger entries and the checkpoints that sign them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import sqlite_utils

Row = dict[str, Any]

CHUNK_BYTES = 1024 * 1024


def case_records(db: sqlite_utils.Database, case_id: int) -> list[Row]:
    """Every stored field record of the case, in the order the server received them."""
    return list(db.query("SELECT * FROM sync_records WHERE case_id = ? ORDER BY seq", [case_id]))


def case_visits(db: sqlite_utils.Database, case_id: int) -> dict[int, Row]:
    """The case's visits by id (their plan: date, agent, purpose, status)."""
    rows = db.query(
        "SELECT id, case_id, agent_id, visit_date, purpose, status FROM visits WHERE case_id = ?",
        [case_id],
    )
    return {row["id"]: row for row in rows}


def blob_meta(db: sqlite_utils.Database, sha256: str) -> Row | None:
    """A stored blob's rowid, size and type, without its bytes."""
    rows = list(
        db.query("SELECT rowid, sha256, size, content_type FROM blobs WHERE sha256 = ?", [sha256])
    )
    return rows[0] if rows else None


def copy_blob(db: sqlite_utils.Database, rowid: int, out: BinaryIO) -> int:
    """Write a blob's bytes to `out` in chunks, never all in memory; bytes written."""
    written = 0
    with db.conn.blobopen("blobs", "data", rowid, readonly=True) as blob:
        while chunk := blob.read(CHUNK_BYTES):
            out.write(chunk)
            written += len(chunk)
    return written


def iter_blob(db: sqlite_utils.Database, rowid: int) -> Iterator[bytes]:
    """A blob's bytes in chunks (for a streamed download)."""
    with db.conn.blobopen("blobs", "data", rowid, readonly=True) as blob:
        while chunk := blob.read(CHUNK_BYTES):
            yield chunk


def records_referencing(db: sqlite_utils.Database, sha256: str) -> list[Row]:
    """Stored records that reference the blob (as an attachment or a signature), oldest first,
    with the borrower they are about."""
    return list(
        db.query(
            "SELECT r.id, r.kind, r.case_id, r.visit_id, c.borrower_id FROM sync_records r "
            "JOIN cases c ON c.id = r.case_id WHERE r.id IN ("
            "SELECT r2.id FROM sync_records r2, json_each(r2.body, '$.attachments') a "
            "WHERE a.value = :sha UNION "
            "SELECT id FROM sync_records WHERE kind = 'agreement' AND "
            "(json_extract(body, '$.borrower_signature_sha256') = :sha OR "
            "json_extract(body, '$.agent_signature_sha256') = :sha)) ORDER BY r.seq",
            {"sha": sha256},
        )
    )


def borrower_entries(db: sqlite_utils.Database, borrower_id: int) -> list[Row]:
    """Every ledger entry about the borrower, in chain order."""
    return list(
        db.query("SELECT * FROM exposure_ledger WHERE borrower_id = ? ORDER BY seq", [borrower_id])
    )


def checkpoints_from(db: sqlite_utils.Database, seq: int) -> Iterator[Row]:
    """Checkpoints signing an entry at or after `seq`, nearest first."""
    yield from db.query(
        "SELECT * FROM ledger_checkpoints WHERE head_seq >= ? ORDER BY head_seq, id", [seq]
    )


def entries_between(db: sqlite_utils.Database, first_seq: int, last_seq: int) -> Iterator[Row]:
    """Ledger entries first_seq..last_seq, in chain order (streamed)."""
    cursor = db.execute(
        "SELECT * FROM exposure_ledger WHERE seq >= ? AND seq <= ? ORDER BY seq",
        [first_seq, last_seq],
    )
    columns = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(columns, row, strict=True))


def keyring(db: sqlite_utils.Database) -> list[Row]:
    """Every public key in the server's keyring, oldest first."""
    return list(db.query("SELECT * FROM ledger_keys ORDER BY rowid"))
