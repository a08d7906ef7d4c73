"""Online backups and checked restores of the SQLite store.

A backup is a snapshot written to a temp file beside its destination, checked, made durable
and renamed over it, so the destination only ever holds a complete, checked copy. A restore
copies a backup beside the configured database, checks it (integrity and exposure ledger),
migrates it to this version's schema, then renames it into place.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import sqlite_utils

from server.errors import BackupError, UnsoundCopy, WouldOverwrite
from server.runtime import Runtime
from server.services.audit import verify as verify_ledger
from server.storage import backups as backup_rows
from server.storage import ledger as ledger_rows
from server.storage.connection import open_db
from server.storage.migrations import migrate

_SIDECARS = ("-wal", "-shm", "-journal")
# Tables a freshly created (empty) database already fills.
# What creating an empty database writes: its schema version and its first signing key.
_SCHEMA_TABLES = frozenset({"schema_migrations", "ledger_keys"})


@dataclass(frozen=True)
class BackupSummary:
    """What a backup or restore left behind, as checked on the file itself."""

    path: str
    size_bytes: int
    schema_version: int
    tables: dict[str, int]
    ledger_head_seq: int
    ledger_head_hash: str
    integrity: str | None = None  # "ok" once checked; None when checks were skipped
    ledger_intact: bool | None = None
    ledger_problem: str | None = None
    migrations_applied: list[int] = field(default_factory=list)


def take_backup(
    db: sqlite_utils.Database, rt: Runtime, dest: Path, *, check: bool = True
) -> BackupSummary:
    """Snapshot the live database into dest while it keeps serving; check the copy."""
    dest = Path(dest)
    live = backup_rows.database_file(db)
    if not live:
        raise BackupError("an in-memory database cannot be backed up")
    if _same_file(dest, Path(live)):
        raise BackupError(f"{dest} is the live database itself")
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_beside(dest)
    try:
        try:
            backup_rows.vacuum_into(db, temp)
            copy = backup_rows.open_read_only(temp)
            try:
                summary = _inspect(copy, rt, integrity=check, ledger_check=check)
            finally:
                copy.conn.close()
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"could not copy {live}: {exc}") from exc
        _refuse_if_unsound(summary, f"the backup of {live}")
        _install(temp, dest)
    finally:
        _remove_with_sidecars(temp)
    return _at(summary, dest)


def restore_backup(
    source: Path, target: Path, rt: Runtime, now_iso: str, *, force: bool = False
) -> BackupSummary:
    """Put a checked, migrated copy of source at target. The server must not be running."""
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise BackupError(f"{source}: no such file")
    if _same_file(source, target):
        raise BackupError(f"{source} is the database it would be restored into")
    if not force and _holds_data(target):
        raise WouldOverwrite(
            f"{target} already holds data; pass --force to replace it with {source}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_beside(target)
    try:
        _copy(source, temp)
        _refuse_if_damaged(temp, source)
        try:
            db = open_db(str(temp))
            try:
                summary = _migrate_and_verify(db, rt, now_iso, source)
                backup_rows.use_rollback_journal(db)
            finally:
                db.conn.close()
        except sqlite3.DatabaseError as exc:
            raise UnsoundCopy(f"{source} is damaged: {exc}") from None
        _remove_with_sidecars(target, keep_file=True)  # a stale WAL would replay onto the copy
        _install(temp, target)
    finally:
        _remove_with_sidecars(temp)
    return _at(summary, target)


def _refuse_if_damaged(copy: Path, source: Path) -> None:
    """integrity_check the copy before anything (a migration) writes to it."""
    db = backup_rows.open_read_only(copy)
    try:
        problems = backup_rows.integrity_problems(db)
    finally:
        db.conn.close()
    if problems:
        raise UnsoundCopy(f"{source} fails integrity_check: {'; '.join(problems)}")


def _migrate_and_verify(
    db: sqlite_utils.Database, rt: Runtime, now_iso: str, source: Path
) -> BackupSummary:
    if backup_rows.schema_version(db) == 0:
        raise UnsoundCopy(f"{source} is not a Doorstep database (no schema_migrations)")
    # An older backup may lack tables the verification reads: migrate first, then verify.
    applied = migrate(db, now_iso)
    summary = replace(_inspect(db, rt, integrity=False, ledger_check=True), integrity="ok")
    _refuse_if_unsound(summary, str(source))
    return replace(summary, migrations_applied=applied)


def _inspect(
    db: sqlite_utils.Database, rt: Runtime, *, integrity: bool, ledger_check: bool
) -> BackupSummary:
    """Counts and ledger head of db, with the checks asked for."""
    head_seq, head_hash = ledger_rows.head(db)
    summary = BackupSummary(
        path="",
        size_bytes=0,
        schema_version=backup_rows.schema_version(db),
        tables=backup_rows.table_counts(db),
        ledger_head_seq=head_seq,
        ledger_head_hash=head_hash,
    )
    if integrity:
        problems = backup_rows.integrity_problems(db)
        summary = replace(summary, integrity="; ".join(problems) or "ok")
        if problems:
            return summary
    if ledger_check:
        # A copy is behind the live external checkpoint files by nature: check it alone.
        report = verify_ledger(db, rt, external=False)
        problem, broken = report["problem"], report.get("first_broken_seq")
        summary = replace(
            summary,
            ledger_intact=report["intact"],
            ledger_problem=f"entry {broken}: {problem}" if problem and broken else problem,
        )
    return summary


def _refuse_if_unsound(summary: BackupSummary, what: str) -> None:
    if summary.integrity not in (None, "ok"):
        raise UnsoundCopy(f"{what} fails integrity_check: {summary.integrity}")
    if summary.ledger_intact is False:
        problem = summary.ledger_problem
        raise UnsoundCopy(f"the exposure ledger in {what} does not verify: {problem}")


def _copy(source: Path, temp: Path) -> None:
    try:
        backup_rows.copy_file_database(source, temp)
    except sqlite3.DatabaseError as exc:
        raise UnsoundCopy(f"{source} is not a readable SQLite database: {exc}") from None


def _holds_data(target: Path) -> bool:
    """True when target has rows beyond what creating an empty database writes."""
    if not target.exists():
        return False
    db = backup_rows.open_read_only(target)
    try:
        counts = backup_rows.table_counts(db)
    except sqlite3.DatabaseError:
        return True  # unreadable: not ours to overwrite silently
    finally:
        db.conn.close()
    return any(n for name, n in counts.items() if name not in _SCHEMA_TABLES)


def _install(temp: Path, dest: Path) -> None:
    """Make temp durable, then atomically put it at dest."""
    fd = os.open(temp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, dest)
    with contextlib.suppress(OSError):  # not every platform can fsync a directory
        fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _at(summary: BackupSummary, path: Path) -> BackupSummary:
    return replace(summary, path=str(path), size_bytes=path.stat().st_size)


def _temp_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def _remove_with_sidecars(path: Path, *, keep_file: bool = False) -> None:
    names = [path.name + suffix for suffix in _SIDECARS] + ([] if keep_file else [path.name])
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (path.parent / name).unlink()


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()
