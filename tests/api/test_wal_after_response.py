"""On SQLite, the WAL checkpoint that a request's writes make due runs after its response
has been sent, on the request's own connection (server/__init__.py, connection.checkpoint):
no request pays for copying the WAL into the database file, and the file still catches up.

What a checkpoint has done is read from the database file alone (`immutable=1` ignores the
WAL)."""

from __future__ import annotations

import sqlite3

from server.storage import connection
from server.storage.connection import CHECKPOINT_AFTER_COMMITS
from tests.api.lifecycle_steps import API, iso, report
from tests.conftest import T0


def _in_file(path: str, record_ids: list[str]) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        marks = ", ".join("?" for _ in record_ids)
        rows = conn.execute(f"SELECT id FROM sync_records WHERE id IN ({marks})", record_ids)
        return sorted(row[0] for row in rows)
    finally:
        conn.close()


def test_pushed_records_reach_the_database_file_after_the_answers_are_sent(
    world, client, auth, app, monkeypatch
):
    ran: list[bool] = []
    checkpoint = connection.checkpoint

    def noted(db):
        # Runs after the answer was handed over: no transaction, no request context.
        ran.append(db.conn.in_transaction)
        checkpoint(db)

    monkeypatch.setattr("server.checkpoint", noted)
    sent: list[str] = []
    for _ in range(CHECKPOINT_AFTER_COMMITS):
        record = report(world.visits["v1"], "not_home")
        body = {"device_time": iso(T0), "records": [record]}
        answer = client.post(f"{API}/sync/push", json=body, headers=auth.headers("agent1"))
        assert answer.status_code == 200
        answer.close()
        sent.append(record["id"])
        if ran:
            break
    assert ran == [False]
    assert _in_file(app.config["DATABASE"], sent) == sorted(sent)


def test_requests_that_write_nothing_make_no_checkpoint_due(client, monkeypatch):
    monkeypatch.setattr(connection, "_commits_unchecked", 0)  # this process's count
    ran: list[object] = []
    monkeypatch.setattr("server.checkpoint", ran.append)
    for _ in range(CHECKPOINT_AFTER_COMMITS * 2):
        answer = client.get(f"{API}/health")
        assert answer.status_code == 200
        answer.close()
    assert ran == []
