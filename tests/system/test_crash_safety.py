"""Crash safety: SIGKILL gunicorn's workers and master under a push load, lose nothing.

The figures go to docs/reliability.md; `python -m bench.soak` runs the long version.
Run with `-s` to see them.
"""

from __future__ import annotations

import sqlite3

import pytest

from loadtest.trials import crash_trial
from server.storage.connection import BUSY_TIMEOUT_MS, connection_settings, open_db, transaction
from sync.client import FieldClient, TransportResponse
from tests.conftest import PASSWORD

DURABLE = {
    "journal_mode": "wal",
    "synchronous": 2,  # FULL: a commit survives power loss, not only a process crash
    "foreign_keys": 1,
    "busy_timeout": BUSY_TIMEOUT_MS,
}


def test_sigkilled_workers_and_master_lose_no_acknowledged_record(tmp_path, server_database):
    report = crash_trial(tmp_path, agents=6, kills=6, workers=3, database_url=server_database)
    print("\n" + "\n".join(report.lines()))

    assert sum(report.kills.values()) == 6 and report.kills["master"] >= 1
    assert report.restarts == report.kills["master"]
    assert report.acknowledged > 0 and report.meter.lost > 0  # the kills did cut requests
    # SQLite's integrity_check; on PostgreSQL amcheck over every index after the last kill.
    assert report.store.intact, report.store.integrity
    assert report.lost == [] and report.store.duplicated == []
    assert report.meter.agreements and report.store.receipts_missing == []
    assert (report.ledger["intact"], report.ledger["problem"]) == (True, None)
    assert report.ledger["entries_checked"] > 0
    assert report.meter.server_errors == [] and report.meter.locked == 0
    assert report.meter.rejected == {} and report.still_queued == 0
    assert report.phone_errors == []
    durable = DURABLE if server_database is None else POSTGRES_DURABLE
    assert report.ready and all(_durability(ready) == durable for ready in report.ready)
    assert _durability(report.store.settings) == durable


# On PostgreSQL: every commit durable before it is acknowledged, and the server fsyncs.
POSTGRES_DURABLE = {"engine": "postgresql", "synchronous_commit": "on", "fsync": "on"}


def _durability(settings: dict[str, object]) -> dict[str, object]:
    """The settings a crash-safety claim rests on (PostgreSQL's version and lock timeout
    are reported too, and do not matter here)."""
    if settings.get("engine") != "postgresql":
        return settings
    return {name: settings[name] for name in POSTGRES_DURABLE}


def test_every_connection_open_db_makes_is_durable(tmp_path):
    path = str(tmp_path / "fresh.db")
    connections = [open_db(path) for _ in range(3)]
    try:
        assert [connection_settings(db) for db in connections] == [DURABLE] * 3
    finally:
        for db in connections:
            db.conn.close()


def test_a_write_transaction_takes_the_write_lock_when_it_begins(tmp_path):
    path = str(tmp_path / "fresh.db")
    writer, other = open_db(path), open_db(path)
    writer.execute("CREATE TABLE t (x INTEGER)")
    other.execute("PRAGMA busy_timeout = 0")
    try:
        with transaction(writer):
            # BEGIN IMMEDIATE: a second writer waits at BEGIN, never half-way through.
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
            assert other.execute("SELECT count(*) FROM t").fetchone()[0] == 0  # reads go on
    finally:
        writer.conn.close()
        other.conn.close()


_SETTINGS = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")


class _RecordingConnection(sqlite3.Connection):
    """A connection that notes its settings when it is closed, and is itself noted when
    opened (a request's connection is kept by its thread, so it may outlive the test)."""

    closed_with: list[dict[str, object]] = []
    opened: list[sqlite3.Connection] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _RecordingConnection.opened.append(self)

    def settings(self) -> dict[str, object]:
        return {name: self.execute(f"PRAGMA {name}").fetchone()[0] for name in _SETTINGS}

    def close(self) -> None:
        _RecordingConnection.closed_with.append(self.settings())
        super().close()


class _FlaskTransport:
    """The reference client's transport over the Flask test client."""

    def __init__(self, app) -> None:
        self.http = app.test_client()

    def request(self, method, path, *, json=None, data=None, headers=None, params=None):
        response = self.http.open(
            "/api/v1" + path,
            method=method,
            json=json,
            data=data,
            headers=dict(headers or {}),
            query_string={k: v for k, v in (params or {}).items() if v is not None},
        )
        body = response.get_json() if response.is_json else (response.data or None)
        return TransportResponse(response.status_code, response.headers, body)


@pytest.mark.sqlite_only  # SQLite pragmas of each connection
def test_every_connection_a_request_opens_is_durable(world, auth, tmp_path, monkeypatch):
    """Login, pull, blob upload, push (with an agreement), day view, ledger verification:
    every connection they open is WAL, synchronous=FULL, foreign keys, busy timeout."""
    phone = FieldClient(
        _FlaskTransport(world.app),
        tmp_path / "phone.db",
        "agent1",
        PASSWORD,
        "phone-agent1",
        clock=world.clock,
    )
    connect = sqlite3.connect
    seen: list[dict[str, object]] = []
    opened: list[sqlite3.Connection] = []
    monkeypatch.setattr(_RecordingConnection, "closed_with", seen)
    monkeypatch.setattr(_RecordingConnection, "opened", opened)
    # Requests open their thread's connection anew: forget the ones the world's setup kept.
    world.app.extensions.pop("doorstep_connections", None)
    monkeypatch.setattr(
        sqlite3, "connect", lambda *a, **kw: connect(*a, factory=_RecordingConnection, **kw)
    )
    phone.sync()
    visit = next(card for card in phone.cards() if card["id"] == world.visits["v1"])
    now = world.clock()
    phone.record_agent_credential(visit["id"], "B-1", borrower_acknowledged=True)
    phone.record_visit_report(visit["id"], arrived_at=now, outcome="agreement_signed")
    agreement = phone.record_agreement(
        visit_id=visit["id"],
        case_id=visit["case_id"],
        installments=[("2026-12-24", "600.00"), ("2027-01-24", "600.00")],
        currency="CNY",
        template_id="repayment-plan-zh",
        template_version=1,
        borrower_signature=b"\x89PNG\r\n\x1a\nborrower",
        agent_signature=b"\x89PNG\r\n\x1a\nagent",
        signed_at=now,
        lat="31.201000",
        lon="121.401000",
    )
    result = phone.sync()
    day = world.app.test_client().get("/api/v1/me/day", headers=auth.headers("agent1"))
    verify = world.app.test_client().get("/api/v1/audit/verify", headers=auth.headers("privacy"))
    monkeypatch.undo()
    phone.close()

    assert agreement in result.acknowledged and len(result.acknowledged) == 3
    assert day.status_code == 200 and verify.json["intact"] is True
    # The thread's requests share one kept connection (opened by the first of them).
    still_open = []
    for conn in opened:
        try:
            still_open.append(conn.settings())
        except sqlite3.ProgrammingError:
            continue  # closed: its settings were noted then
    assert len(still_open) == 1, still_open
    assert all(settings == DURABLE for settings in [*seen, *still_open])
