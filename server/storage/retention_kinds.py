"""What retention removes of attachments and free-text notes (docs/retention.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlite_utils

from server.storage.retention import retention_gate

# Blobs referenced by records of the given cases and by no record of another case.
_BLOBS_OF_CASES = """
SELECT DISTINCT r.sha256 FROM blob_references r
JOIN sync_records s ON s.id = r.record_id
WHERE s.case_id IN (SELECT value FROM json_each(:cases))
  AND EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = r.sha256)
  AND NOT EXISTS (
      SELECT 1 FROM blob_references o JOIN sync_records t ON t.id = o.record_id
      WHERE o.sha256 = r.sha256 AND t.case_id NOT IN (SELECT value FROM json_each(:cases)))
ORDER BY r.sha256
"""

# Blobs no stored record references whose every upload is older than `before`: never
# referenced, or referenced by records an earlier purge removed (before references were kept).
_UNREFERENCED = """
SELECT b.sha256 FROM blobs b
WHERE NOT EXISTS (SELECT 1 FROM blob_references r WHERE r.sha256 = b.sha256)
  AND b.created_at < :before
  AND NOT EXISTS (SELECT 1 FROM blob_owners o WHERE o.sha256 = b.sha256 AND o.created_at >= :before)
ORDER BY b.sha256
"""

_RECORD_NOTES = """
SELECT r.id, c.borrower_id FROM sync_records r JOIN cases c ON c.id = r.case_id
WHERE c.borrower_id IN (SELECT value FROM json_each(:borrowers))
  AND r.case_id NOT IN (SELECT value FROM json_each(:excluded))
  AND json_valid(r.body) AND json_type(r.body, :path) = 'text'
  AND json_extract(r.body, :path) != :marker
ORDER BY r.seq
"""


def blobs_of_cases(db: sqlite_utils.Database, case_ids: Sequence[int]) -> list[str]:
    """Blobs that go when these cases' records go: no record of another case references them."""
    if not case_ids:
        return []
    return [r[0] for r in db.execute(_BLOBS_OF_CASES, {"cases": json.dumps(list(case_ids))})]


def unreferenced_blobs(db: sqlite_utils.Database, before: str) -> list[str]:
    """Blobs no stored record references, uploaded before `before` by every agent that sent
    them."""
    return [r[0] for r in db.execute(_UNREFERENCED, {"before": before})]


def blob_bytes(db: sqlite_utils.Database, hashes: Sequence[str]) -> int:
    return int(
        db.execute(
            "SELECT COALESCE(SUM(size), 0) FROM blobs WHERE sha256 IN "
            "(SELECT value FROM json_each(?))",
            [json.dumps(list(hashes))],
        ).fetchone()[0]
    )


def idle_uploads(db: sqlite_utils.Database, before: str) -> tuple[list[str], int]:
    """Unfinished uploads untouched since `before`, and how many chunks they hold."""
    ids = [r[0] for r in db.execute("SELECT id FROM blob_uploads WHERE updated_at < ?", [before])]
    chunks = db.execute(
        "SELECT count(*) FROM blob_chunks WHERE upload_id IN (SELECT value FROM json_each(?))",
        [json.dumps(ids)],
    ).fetchone()[0]
    return ids, int(chunks)


def delete_blobs(db: sqlite_utils.Database, hashes: Sequence[str]) -> int:
    """Remove blobs with their owners; a blob a stored record references refuses (trigger)."""
    wanted = json.dumps(list(hashes))
    db.execute("DELETE FROM blob_owners WHERE sha256 IN (SELECT value FROM json_each(?))", [wanted])
    return db.execute(
        "DELETE FROM blobs WHERE sha256 IN (SELECT value FROM json_each(?))", [wanted]
    ).rowcount


def delete_uploads(db: sqlite_utils.Database, upload_ids: Sequence[str]) -> int:
    wanted = json.dumps(list(upload_ids))
    db.execute(
        "DELETE FROM blob_chunks WHERE upload_id IN (SELECT value FROM json_each(?))", [wanted]
    )
    return db.execute(
        "DELETE FROM blob_uploads WHERE id IN (SELECT value FROM json_each(?))", [wanted]
    ).rowcount


def _owned_by(table: str, owner: str) -> str:
    if owner == "borrower":
        return f"FROM [{table}] t WHERE t.borrower_id IN (SELECT value FROM json_each(:borrowers))"
    return (
        f"FROM [{table}] t JOIN cases k ON k.id = t.case_id "
        "WHERE k.borrower_id IN (SELECT value FROM json_each(:borrowers))"
    )


def _borrower_of(owner: str) -> str:
    return "t.borrower_id" if owner == "borrower" else "k.borrower_id"


def count_notes(
    db: sqlite_utils.Database,
    borrower_ids: Sequence[int],
    columns: Iterable[tuple[str, str, str]],
    record_keys: Iterable[str],
    excluded_cases: Sequence[int],
    marker: str,
) -> tuple[dict[str, int], list[int]]:
    """Notes about these borrowers still to empty, per `table.column` (and per record body
    key), and the borrowers they are about. `columns` are (table, column, owner)."""
    borrowers = json.dumps(list(borrower_ids))
    counts: dict[str, int] = {}
    about: set[int] = set()
    for table, column, owner in columns:
        rows = db.execute(
            f"SELECT {_borrower_of(owner)} {_owned_by(table, owner)} AND t.[{column}] IS NOT NULL",
            {"borrowers": borrowers},
        ).fetchall()
        counts[f"{table}.{column}"] = len(rows)
        about.update(r[0] for r in rows)
    for key in record_keys:
        rows = _record_notes(db, borrowers, key, excluded_cases, marker)
        counts[f"sync_records.body.{key}"] = len(rows)
        about.update(r[1] for r in rows)
    return counts, sorted(about)


def erase_notes(
    db: sqlite_utils.Database,
    borrower_ids: Sequence[int],
    columns: Iterable[tuple[str, str, str]],
) -> int:
    """Empty these free-text columns in every row about these borrowers; how many values."""
    borrowers = json.dumps(list(borrower_ids))
    erased = 0
    for table, column, owner in columns:
        key = "borrower_id" if owner == "borrower" else "case_id"
        rowid = "t.borrower_id" if owner == "borrower" else "t.case_id"
        select = f"SELECT {rowid} {_owned_by(table, owner)}"
        erased += db.execute(
            f"UPDATE [{table}] SET [{column}] = NULL WHERE [{column}] IS NOT NULL "
            f"AND {key} IN ({select})",
            {"borrowers": borrowers},
        ).rowcount
    return erased


def redact_record_notes(
    db: sqlite_utils.Database,
    borrower_ids: Sequence[int],
    key: str,
    excluded_cases: Sequence[int],
    marker: str,
    certificate_id: int,
    now: str,
) -> int:
    """Replace `key` in the bodies of these borrowers' stored records by `marker`, noting
    each redaction; the gate opens only under the signed notes certificate."""
    rows = _record_notes(db, json.dumps(list(borrower_ids)), key, excluded_cases, marker)
    ids = json.dumps([r[0] for r in rows])
    db.execute(
        "INSERT INTO record_redactions (record_id, field, redacted_at, certificate_id) "
        "SELECT value, ?, ?, ? FROM json_each(?)",
        [f"body.{key}", now, certificate_id, ids],
    )
    with retention_gate(db, "sync_records", certificate_id):
        return db.execute(
            "UPDATE sync_records SET body = json_set(body, ?, ?) "
            "WHERE id IN (SELECT value FROM json_each(?))",
            [f"$.{key}", marker, ids],
        ).rowcount


def redactions(db: sqlite_utils.Database, record_id: str) -> list[dict[str, Any]]:
    """The redactions made in one stored record's body."""
    return list(
        db.query(
            "SELECT record_id, field, redacted_at, certificate_id FROM record_redactions "
            "WHERE record_id = ? ORDER BY field",
            [record_id],
        )
    )


def _record_notes(
    db: sqlite_utils.Database,
    borrowers: str,
    key: str,
    excluded_cases: Sequence[int],
    marker: str,
) -> list[tuple[str, int]]:
    params = {
        "borrowers": borrowers,
        "excluded": json.dumps(list(excluded_cases)),
        "path": f"$.{key}",
        "marker": marker,
    }
    return [(r[0], r[1]) for r in db.execute(_RECORD_NOTES, params)]
