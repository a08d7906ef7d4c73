"""Borrowers and cases."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

Row = dict[str, Any]

BORROWER_COLUMNS = (
    "external_id",
    "full_name",
    "national_id",
    "phones",
    "home_address",
    "home_lat",
    "home_lon",
    "work_address",
    "employer",
    "date_of_birth",
    "contacts",
    "income",
    "time_zone",
)
CASE_COLUMNS = (
    "external_id",
    "borrower_id",
    "product",
    "overdue_amount",
    "currency",
    "days_past_due",
    "last_payment_date",
    "last_payment_amount",
    "hardship",
    "do_not_visit",
    "legal_hold",
    "dispute",
    "deceased",
    "status",
    "closed_at",
    "content_hash",
)


def find_case_by_external_id(db: sqlite_utils.Database, external_id: str) -> Row | None:
    rows = list(db.query("SELECT * FROM cases WHERE external_id = ?", [external_id]))
    return rows[0] if rows else None


def case_hashes(db: sqlite_utils.Database, external_ids: list[str]) -> dict[str, tuple[int, str]]:
    """external_id -> (case id, content hash) for the ids that exist."""
    found: dict[str, tuple[int, str]] = {}
    for start in range(0, len(external_ids), 500):
        chunk = external_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.execute(
            f"SELECT external_id, id, content_hash FROM cases WHERE external_id IN ({marks})", chunk
        ):
            found[row[0]] = (row[1], row[2])
    return found


def upsert_borrower(db: sqlite_utils.Database, borrower: Row, now: str) -> int:
    """Insert or update by external id; returns the borrower's id."""
    cols = ", ".join(BORROWER_COLUMNS)
    marks = ", ".join(f":{c}" for c in BORROWER_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in BORROWER_COLUMNS if c != "external_id")
    row = db.execute(
        f"INSERT INTO borrowers ({cols}, created_at, updated_at) VALUES ({marks}, :now, :now) "
        f"ON CONFLICT (external_id) DO UPDATE SET {updates}, updated_at = :now RETURNING id",
        {**borrower, "now": now},
    ).fetchone()
    return int(row[0])


def insert_case(db: sqlite_utils.Database, case: Row, now: str) -> int:
    cols = ", ".join(CASE_COLUMNS)
    marks = ", ".join(f":{c}" for c in CASE_COLUMNS)
    cursor = db.execute(
        f"INSERT INTO cases ({cols}, version, created_at, updated_at) "
        f"VALUES ({marks}, 1, :now, :now)",
        {**case, "now": now},
    )
    return int(cursor.lastrowid)


def update_case(
    db: sqlite_utils.Database,
    case_id: int,
    changes: Row,
    now: str,
    expected_version: int | None = None,
) -> bool:
    """Set these columns and bump the version; with `expected_version`, only if nobody
    changed the case since."""
    sets = "".join(f"{c} = :{c}, " for c in CASE_COLUMNS if c != "external_id" and c in changes)
    guard = "" if expected_version is None else " AND version = :expected"
    cursor = db.execute(
        f"UPDATE cases SET {sets}version = version + 1, updated_at = :now WHERE id = :id{guard}",
        {**changes, "now": now, "id": case_id, "expected": expected_version},
    )
    return cursor.rowcount == 1


def cases_by_ids(db: sqlite_utils.Database, case_ids: list[int]) -> dict[int, Row]:
    """These cases by id (unknown ids are left out)."""
    return {
        row["id"]: row
        for row in db.query(
            "SELECT * FROM cases WHERE id IN (SELECT value FROM json_each(?))",
            [json.dumps(case_ids)],
        )
    }


def cases_of_borrower(db: sqlite_utils.Database, borrower_id: int) -> list[Row]:
    """Every case of the borrower, by id."""
    return list(db.query("SELECT * FROM cases WHERE borrower_id = ? ORDER BY id", [borrower_id]))


def insert_history(db: sqlite_utils.Database, rows: list[Row]) -> None:
    """Append one row per case change (case_history)."""
    db.conn.executemany(
        "INSERT INTO case_history (case_id, version, status, flags, reason, source, changed_at, "
        "changed_by) VALUES (:case_id, :version, :status, :flags, :reason, :source, "
        ":changed_at, :changed_by)",
        rows,
    )


def get_case(db: sqlite_utils.Database, case_id: int) -> Row | None:
    rows = list(db.query("SELECT * FROM cases WHERE id = ?", [case_id]))
    return rows[0] if rows else None


def get_borrower(db: sqlite_utils.Database, borrower_id: int) -> Row | None:
    rows = list(db.query("SELECT * FROM borrowers WHERE id = ?", [borrower_id]))
    return rows[0] if rows else None


def latest_case_for_borrower(db: sqlite_utils.Database, borrower_id: int) -> Row | None:
    rows = list(
        db.query(
            "SELECT * FROM cases WHERE borrower_id = ? ORDER BY id DESC LIMIT 1", [borrower_id]
        )
    )
    return rows[0] if rows else None


def national_id_for_case(db: sqlite_utils.Database, case_id: int) -> str | None:
    """Read only to compare typed characters on the server; never returned to anyone."""
    row = db.execute(
        "SELECT b.national_id FROM cases c JOIN borrowers b ON b.id = c.borrower_id WHERE c.id = ?",
        [case_id],
    ).fetchone()
    return row[0] if row else None


def list_cases(db: sqlite_utils.Database, filters: Row, after: int, limit: int) -> list[Row]:
    clauses, params = ["c.id > :after"], {"after": after, "limit": limit}
    for key in ("status", "external_id"):
        if filters.get(key) is not None:
            clauses.append(f"c.{key} = :{key}")
            params[key] = filters[key]
    return list(
        db.query(
            f"SELECT c.* FROM cases c WHERE {' AND '.join(clauses)} ORDER BY c.id LIMIT :limit",
            params,
        )
    )


def record_import_run(db: sqlite_utils.Database, run: Row) -> int:
    cursor = db.execute(
        "INSERT INTO import_runs (started_at, user_id, source, format, total_rows, created, "
        "updated, unchanged, rejected) VALUES (:started_at, :user_id, :source, :format, "
        ":total_rows, :created, :updated, :unchanged, :rejected)",
        run,
    )
    return int(cursor.lastrowid)
