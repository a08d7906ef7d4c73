"""Widen the CHECKs on visits.status and cases.status, and rename the old `closed` status.

SQLite cannot alter a CHECK, and rebuilding `visits` or `cases` needs foreign keys off,
which a migration running inside its transaction cannot switch. SQLite documents a simpler
procedure for changes that leave every stored row valid (ALTER TABLE, "Making Other Kinds
Of Table Schema Changes"): rewrite the table's text in sqlite_schema under writable_schema
and bump schema_version in the same transaction. Widening a CHECK is such a change; the
only row it would leave invalid, a case `closed`, is renamed below before the commit.
"""

from __future__ import annotations

import sqlite_utils

_WIDENED = {
    "visits": (
        "CHECK (status IN ('planned', 'cancelled', 'completed'))",
        "CHECK (status IN ('planned', 'cancelled', 'completed', 'attempted', 'missed'))",
    ),
    "cases": (
        "CHECK (status IN ('open', 'closed'))",
        "CHECK (status IN ('open', 'closed_paid', 'closed_settled', 'closed_written_off', "
        "'legal'))",
    ),
}


def run(db: sqlite_utils.Database, now_iso: str) -> None:
    version = db.execute("PRAGMA schema_version").fetchone()[0]
    db.execute("PRAGMA writable_schema = ON")
    try:
        for table, (old, new) in _WIDENED.items():
            sql = db.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]
            ).fetchone()[0]
            if sql.count(old) != 1:
                raise RuntimeError(f"{table}: the status CHECK is not the one expected")
            db.execute(
                "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
                [sql.replace(old, new), table],
            )
        db.execute(f"PRAGMA schema_version = {version + 1}")
    finally:
        db.execute("PRAGMA writable_schema = OFF")
    # Before this version a case could only be `closed`, by import, when the bank's file
    # said so; its feeds meant the loan was repaid (imports still read `closed` that way).
    db.execute("UPDATE cases SET status = 'closed_paid' WHERE status = 'closed'")
