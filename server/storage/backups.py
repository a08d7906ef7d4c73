"""SQL for backups and restores: snapshot copies, integrity checks, row counts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils


def vacuum_into(db: sqlite_utils.Database, path: Path) -> None:
    """Write a consistent, compacted snapshot of db to path (which must not exist).

    It runs as one read transaction: in WAL mode writers carry on meanwhile, and unlike a
    paged backup-API copy it never restarts when they commit, so it ends under any load.
    """
    db.execute("VACUUM INTO ?", [str(path)])


def copy_file_database(source: Path, target: Path) -> None:
    """Copy the database at source (opened read-only, its WAL included) into a new file."""
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    dst = sqlite3.connect(target, isolation_level=None)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def integrity_problems(db: sqlite_utils.Database, limit: int = 20) -> list[str]:
    """What PRAGMA integrity_check reports; empty when the file is sound."""
    try:
        rows = [row[0] for row in db.execute(f"PRAGMA integrity_check({int(limit)})")]
    except sqlite3.DatabaseError as exc:  # too damaged to walk: "database disk image is malformed"
        return [str(exc)]
    return [] if rows == ["ok"] else rows


def table_counts(db: sqlite_utils.Database) -> dict[str, int]:
    """Rows per table (SQLite's own tables left out), by table name."""
    names = [
        row[0]
        for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    quoted = {name: '"' + name.replace('"', '""') + '"' for name in names}
    return {
        name: db.execute(f"SELECT count(*) FROM {quoted[name]}").fetchone()[0] for name in names
    }


def schema_version(db: sqlite_utils.Database) -> int:
    """The highest migration applied (0 for a file Doorstep never migrated)."""
    if not db["schema_migrations"].exists():
        return 0
    return db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def use_rollback_journal(db: sqlite_utils.Database) -> None:
    """Fold any WAL into the file and leave it a single self-contained file."""
    db.execute("PRAGMA journal_mode = DELETE")


def open_read_only(path: Path) -> sqlite_utils.Database:
    """A connection that cannot change the file at path (for inspecting a copy)."""
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=10
    )
    return sqlite_utils.Database(conn, execute_plugins=False)


def database_file(db: sqlite_utils.Database) -> str:
    """The file behind db's main schema ('' for an in-memory database)."""
    for row in db.execute("PRAGMA database_list"):
        if row[1] == "main":
            return row[2]
    return ""
