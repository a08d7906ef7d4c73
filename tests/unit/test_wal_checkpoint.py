"""WAL checkpoints run after responses are sent (storage/connection.checkpoint), not inside
the commit that fills the WAL: SQLite's own checkpoint is only a safety net far above.

What a checkpoint has done is read from the database file alone: a connection opened with
`immutable=1` ignores the WAL and sees only pages already copied into the file."""

from __future__ import annotations

import sqlite3

from server.storage import connection
from server.storage.connection import (
    CHECKPOINT_AFTER_COMMITS,
    WAL_AUTOCHECKPOINT_PAGES,
    checkpoint,
    checkpoint_due,
    open_db,
    transaction,
)


def _in_file(path) -> int:
    """Rows of t in the database file itself, WAL ignored."""
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM t").fetchone()[0]
    finally:
        conn.close()


def _store(tmp_path, monkeypatch):
    path = tmp_path / "w.db"
    db = open_db(str(path))
    with transaction(db):
        db.execute("CREATE TABLE t (n INTEGER)")
    monkeypatch.setattr(connection, "_commits_unchecked", 0)  # this process's count
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path, db


def test_connections_leave_checkpoints_to_the_app_up_to_a_safety_net(tmp_path):
    db = open_db(str(tmp_path / "a.db"))
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_AUTOCHECKPOINT_PAGES


def test_a_checkpoint_is_due_after_enough_write_transactions_and_copies_them(tmp_path, monkeypatch):
    path, db = _store(tmp_path, monkeypatch)
    for n in range(CHECKPOINT_AFTER_COMMITS - 1):
        with transaction(db):
            db.execute("INSERT INTO t VALUES (?)", [n])
    assert not checkpoint_due(db)
    checkpoint(db)  # not due: nothing copied
    assert _in_file(path) == 0
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == CHECKPOINT_AFTER_COMMITS - 1

    with transaction(db):
        db.execute("INSERT INTO t VALUES (99)")
    assert checkpoint_due(db)
    checkpoint(db)
    assert _in_file(path) == CHECKPOINT_AFTER_COMMITS
    assert not checkpoint_due(db)


def test_reads_never_make_a_checkpoint_due(tmp_path, monkeypatch):
    path, db = _store(tmp_path, monkeypatch)
    for _ in range(CHECKPOINT_AFTER_COMMITS * 2):
        db.execute("SELECT count(*) FROM t").fetchone()
    assert not checkpoint_due(db)


def test_write_transactions_on_other_connections_of_the_process_count_too(tmp_path, monkeypatch):
    """A process serves one store from several threads' connections: what they commit
    together makes the checkpoint due, run by whichever request comes next."""
    path, db = _store(tmp_path, monkeypatch)
    other = open_db(str(path))
    for n in range(CHECKPOINT_AFTER_COMMITS):
        with transaction(other if n % 2 else db):
            (other if n % 2 else db).execute("INSERT INTO t VALUES (?)", [n])
    assert checkpoint_due(db) and checkpoint_due(other)
    checkpoint(db)
    assert _in_file(path) == CHECKPOINT_AFTER_COMMITS
    assert not checkpoint_due(other)
