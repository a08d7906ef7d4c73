"""Versioned schema migrations: numbered SQL files applied in order, each exactly once.

A migration is `sqlite/NNNN_name.sql`, versions 1, 2, 3… without gaps. When a change needs
Python (a data backfill), an `NNNN_name.py` beside it defines `run(db, now_iso)`, called after
the file's SQL in the same transaction; a version may also be Python alone. A released file is
never edited: a change is a new file. schema_migrations records each version with the name
spelled by its file ("0004_raw_record_digests.sql" is "raw record digests"), so databases
created before the files existed upgrade cleanly. Running migrate twice is a no-op.

PostgreSQL has its own files, `postgresql/NNNN_name.sql`, with the same versions and names
(a test holds the two sets in step): each is the same schema step in PostgreSQL's dialect,
its triggers in PL/pgSQL, and needs no Python hook.
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from server.storage import engine
from server.storage.connection import transaction

SQLITE_DIR = Path(__file__).parent / "sqlite"
POSTGRESQL_DIR = Path(__file__).parent / "postgresql"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(sql|py)$")

Hook = Callable[[sqlite_utils.Database, str], None]


class BadMigrationFiles(ValueError):
    """The migration directory does not hold one gapless, well-named file set per version."""


@dataclass(frozen=True)
class Migration:
    """One schema version: its SQL statements, then an optional Python hook."""

    version: int
    name: str
    statements: tuple[str, ...]
    hook: Hook | None = None


def discover(directory: Path, postgresql: bool = False) -> list[Migration]:
    """The migrations in directory, in version order; refuses gaps and mismatched names."""
    files: dict[int, dict[str, Path]] = {}
    names: dict[int, str] = {}
    for path in sorted(directory.iterdir()):
        match = _FILE_NAME.match(path.name)
        if not match:
            continue
        version, words, suffix = int(match[1]), match[2], match[3]
        if names.setdefault(version, words) != words:
            raise BadMigrationFiles(f"version {version} has two names: {names[version]}, {words}")
        files.setdefault(version, {})[suffix] = path
    if sorted(files) != list(range(1, len(files) + 1)):
        raise BadMigrationFiles(f"versions must run 1, 2, 3… without gaps: {sorted(files)}")
    return [
        Migration(
            version=version,
            name=names[version].replace("_", " "),
            statements=(_read_pg_statements if postgresql else _read_statements)(found["sql"])
            if "sql" in found
            else (),
            hook=_load_hook(found["py"]) if "py" in found else None,
        )
        for version, found in sorted(files.items())
    ]


def migrate(db: sqlite_utils.Database, now_iso: str) -> list[int]:
    """Apply every migration not yet applied; returns the versions applied now."""
    with transaction(db):  # on PostgreSQL, under the write lock: nodes may start together
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
    applied: list[int] = []
    postgresql = engine.dialect(db) == "postgresql"
    for migration in POSTGRESQL_MIGRATIONS if postgresql else MIGRATIONS:
        with transaction(db):
            done = db.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", [migration.version]
            ).fetchone()
            if done:
                continue
            if postgresql:
                engine.run_script(db, migration.statements)  # type: ignore[arg-type]
            else:
                for statement in migration.statements:
                    db.execute(statement)
            if migration.hook is not None:
                migration.hook(db, now_iso)
            db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                [migration.version, migration.name, now_iso],
            )
            applied.append(migration.version)
    return applied


def _load_hook(path: Path) -> Hook:
    """The run(db, now_iso) function of a migration's Python file."""
    spec = importlib.util.spec_from_file_location(f"{__name__}.hook_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise BadMigrationFiles(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = getattr(module, "run", None)
    if not callable(run):
        raise BadMigrationFiles(f"{path.name} must define run(db, now_iso)")
    return run


def _read_statements(path: Path) -> tuple[str, ...]:
    """The statements of a migration's SQL file; sqlite3 knows where a trigger body ends."""
    statements, current = [], ""
    for line in path.read_text().splitlines(keepends=True):
        if not current and (not line.strip() or line.strip().startswith("--")):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise BadMigrationFiles(f"{path.name} ends inside a statement: {current.strip()[:60]}")
    return tuple(statements)


def _read_pg_statements(path: Path) -> tuple[str, ...]:
    """The statements of a PostgreSQL migration file ($$-quoted bodies kept whole)."""
    try:
        return tuple(engine.split_statements(path.read_text()))
    except ValueError as error:
        raise BadMigrationFiles(f"{path.name}: {error}") from None


# Append only: a released migration is never edited (see the module docstring).
MIGRATIONS: list[Migration] = discover(SQLITE_DIR)
POSTGRESQL_MIGRATIONS: list[Migration] = discover(POSTGRESQL_DIR, postgresql=True)
