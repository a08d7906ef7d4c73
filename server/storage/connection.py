"""Opening the SQLite store and running write transactions."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from server.storage import engine
from server.timing import phase

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
# The retention gate's triggers call this to check a purge certificate's signature (see
# migration 0007). Every Doorstep connection defines it refusing all; a retention purge
# redefines it on its own connection with the server's key (server/storage/retention.py).
CERTIFIED_FUNCTION = "doorstep_certified"
CERTIFICATE_COLUMNS = (
    "created_at",
    "kind",
    "rule",
    "cutoff",
    "removed_count",
    "checkpoint_id",
    "details",
    "key_id",
    "signature",
)


def open_db(path: str) -> sqlite_utils.Database:
    """A connection with the settings every Doorstep connection must have: the SQLite file
    at `path`, or the PostgreSQL server when `path` is a postgresql:// URL (engine.py)."""
    if engine.is_postgres(path):
        return engine.open_pg(path)  # type: ignore[return-value]
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we open every write transaction ourselves with BEGIN IMMEDIATE,
    # so a reader never has to upgrade to a writer half-way (the classic SQLITE_BUSY trap).
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit that acknowledged a field record or a ledger entry survives power loss.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    # Checkpoints run after responses are sent (checkpoint); SQLite's own, inside
    # the commit that fills the WAL past this many pages, is only the safety net.
    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
    conn.create_function(
        CERTIFIED_FUNCTION, len(CERTIFICATE_COLUMNS), certified_by_nobody, deterministic=True
    )
    return sqlite_utils.Database(conn, execute_plugins=False)


def certified_by_nobody(*_columns: object) -> int:
    """The gate's signature check outside a purge: no certificate is honoured."""
    return 0


# While another process holds the write lock, SQLite's own busy handler sleeps 1, 2, 5, 10,
# 15, 20, 25 ... ms between tries: a push waiting behind another push of ~20 ms wakes up to
# ~15 ms after the lock was freed, and two devices pushing at once were slower than one.
# Taking the lock is retried here every WRITE_RETRY_S instead, up to the same timeout.
WRITE_RETRY_S = 0.0005


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, retried promptly while another connection writes."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
            time.sleep(WRITE_RETRY_S)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def _try_begin_immediate(conn: sqlite3.Connection) -> bool:
    """BEGIN IMMEDIATE if the write lock is free this instant; False if another connection
    holds it (the caller waits for it with _begin_immediate)."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute("BEGIN IMMEDIATE")
        return True
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode != sqlite3.SQLITE_BUSY:
            raise
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def connection_settings(db: sqlite_utils.Database) -> dict[str, object]:
    """The pragmas in force, for health checks and tests."""
    if engine.dialect(db) == "postgresql":
        return engine.settings(db)  # type: ignore[arg-type]
    return {
        "journal_mode": db.execute("PRAGMA journal_mode").fetchone()[0],
        "synchronous": db.execute("PRAGMA synchronous").fetchone()[0],
        "foreign_keys": db.execute("PRAGMA foreign_keys").fetchone()[0],
        "busy_timeout": db.execute("PRAGMA busy_timeout").fetchone()[0],
    }


def integrity_check(db: sqlite_utils.Database) -> list[str]:
    """["ok"] when the store's tables and indexes are sound, else what is wrong: SQLite's
    integrity_check, or amcheck over every index on PostgreSQL (engine.integrity_check)."""
    if engine.dialect(db) == "postgresql":
        return engine.integrity_check(db)  # type: ignore[arg-type]
    return [row[0] for row in db.execute("PRAGMA integrity_check")]


@contextmanager
def transaction(
    db: sqlite_utils.Database, while_waiting: Callable[[], None] | None = None
) -> Iterator[sqlite_utils.Database]:
    """One write transaction, taken with BEGIN IMMEDIATE; nested use joins the outer one.

    `while_waiting` is run, with no transaction open, when another connection of the
    SQLite store holds the write lock as this one asks for it, before waiting for it: work
    that can be done ahead of the lock and checked under it (sync_push reconciles a batch
    so). Not when the lock is free: then it would only add to the time it is held. On
    PostgreSQL the lock is waited for as always (an advisory lock; see engine)."""
    global _commits_unchecked  # counted for the checkpoint after the response (below)
    conn = db.conn
    if conn.in_transaction:
        yield db
        return
    ahead = while_waiting is not None and engine.dialect(db) == "sqlite"
    with phase("lock"):
        taken = ahead and _try_begin_immediate(conn)
    if not taken:
        if ahead:
            while_waiting()  # type: ignore[misc]
        with phase("lock"):
            _begin_immediate(conn)
    try:
        yield db
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    with phase("commit"):
        conn.execute("COMMIT")
    if engine.dialect(db) == "sqlite":
        _commits_unchecked += 1


# A WAL checkpoint copies committed pages from the WAL into the database file and fsyncs it:
# 3-8 ms for the ~1,000 pages at which SQLite checkpoints by itself, inside the commit that
# crossed the mark, so one pull in ~20 (a pull writes ~50 pages: its cards and ledger
# entries) paid it on top of its own time (docs/sync.md, the sixth round). The app instead
# checkpoints on the request's own connection once its response has been sent (Flask's
# call_on_close; server/__init__.py), every CHECKPOINT_AFTER_COMMITS write transactions of
# the process, whichever of its threads' connections made them (a process serves one
# store). PASSIVE waits for no reader or writer. SQLite's own checkpoint stays as a
# safety net at WAL_AUTOCHECKPOINT_PAGES (16 MB of WAL), for connections that are not a
# request's (commands, jobs) and should the app's ever fall behind.
WAL_AUTOCHECKPOINT_PAGES = 4_000
CHECKPOINT_AFTER_COMMITS = 4
_commits_unchecked = 0  # SQLite write transactions of this process since its last checkpoint


def checkpoint_due(db: sqlite_utils.Database) -> bool:
    """Whether a checkpoint is due and this connection can run it (SQLite)."""
    return _commits_unchecked >= CHECKPOINT_AFTER_COMMITS and engine.dialect(db) == "sqlite"


def checkpoint(db: sqlite_utils.Database) -> None:
    """A PASSIVE WAL checkpoint on this connection, when one is due; a busy store (another
    checkpoint running) is left to the next one."""
    global _commits_unchecked
    if not checkpoint_due(db):
        return
    _commits_unchecked = 0
    try:
        db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as error:
        log.info("WAL checkpoint skipped: %s", error)
