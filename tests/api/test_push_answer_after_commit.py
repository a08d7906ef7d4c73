"""A push commits its records first, then writes and ledgers its answer with no write lock
held (exposure.recording with commits_first): another device's push can store meanwhile,
and a failure between the two commits loses no record and ledgers nothing that was not
sent."""

from __future__ import annotations

import threading
from datetime import timedelta

from server.services import exposure
from server.storage import connection
from server.storage import ledger as ledger_rows
from server.storage.connection import open_db, transaction
from tests.api.lifecycle_steps import API, iso, ledger_head, push, report
from tests.conftest import T0


def _stored(db, record_ids: list[str]) -> list[str]:
    marks = ", ".join("?" for _ in record_ids)
    rows = db.execute(f"SELECT id FROM sync_records WHERE id IN ({marks})", record_ids)
    return sorted(row[0] for row in rows)


def test_a_push_answer_is_accounted_while_another_writer_can_take_the_lock(
    world, client, auth, app, db, monkeypatch
):
    v1 = world.visits["v1"]
    records = [report(v1, "not_home"), report(v1, "refused")]
    seen: list[tuple[bool, list[str]]] = []
    account = exposure.account

    def accounting(db, *args, **kwargs):
        # Another connection, as the other worker's push would open one: it takes the write
        # lock while this answer is accounted, and reads this push's records as committed.
        other = open_db(app.config["DATABASE"])
        took: list[list[str]] = []

        def write() -> None:
            with transaction(other):
                took.append(_stored(other, [r["id"] for r in records]))

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=5)
        locked = writer.is_alive()  # still waiting: this request held the write lock
        seen.append((db.conn.in_transaction or locked, took[0] if took else []))
        result = account(db, *args, **kwargs)
        writer.join()
        other.conn.close()
        return result

    monkeypatch.setattr(exposure, "account", accounting)
    before = ledger_head(db)
    outcomes = push(client, auth, "agent1", records)
    assert all(o["status"] in ("accepted", "flagged") for o in outcomes)
    assert seen, "the push answer was not accounted"
    assert all(not in_transaction for in_transaction, _ in seen)
    assert all(stored == sorted(r["id"] for r in records) for _, stored in seen)
    # The answer names the agent's visit: its entries were appended after the accounting.
    assert ledger_head(db) > before


def test_records_survive_a_failure_before_their_answer_is_ledgered(
    world, client, auth, db, monkeypatch
):
    v1 = world.visits["v1"]
    records = [report(v1, "not_home"), report(v1, "refused")]
    ids = [r["id"] for r in records]
    before = ledger_head(db)
    append = ledger_rows.append

    def failing(db, entries):
        raise RuntimeError("the ledger's disk went away")

    monkeypatch.setattr(ledger_rows, "append", failing)
    body = {"device_time": iso(T0), "records": records}
    failed = client.post(f"{API}/sync/push", json=body, headers=auth.headers("agent1"))
    assert failed.status_code == 500
    assert "outcomes" not in failed.json
    # The records were committed; the answer never left, so nothing was ledgered.
    assert _stored(db, ids) == sorted(ids)
    assert ledger_head(db) == before

    # The phone heard nothing and sends the batch again: every record is a replay, with
    # the outcome it was stored with, and this answer is ledgered.
    monkeypatch.setattr(ledger_rows, "append", append)
    again = push(client, auth, "agent1", records)
    assert [o["status"] for o in again] == ["duplicate", "duplicate"]
    assert all(o["original_status"] in ("accepted", "flagged") for o in again)
    assert ledger_head(db) > before
    assert _stored(db, ids) == sorted(ids)


def _counting_write_transactions(monkeypatch) -> list[int]:
    """Write transactions begun: waited for, or taken at once by a push that would
    otherwise reconcile while waiting (connection.transaction's while_waiting)."""
    taken: list[int] = []
    begin, try_begin = connection._begin_immediate, connection._try_begin_immediate

    def counted(conn):
        taken.append(1)
        return begin(conn)

    def tried(conn):
        began = try_begin(conn)
        if began:
            taken.append(1)
        return began

    monkeypatch.setattr(connection, "_begin_immediate", counted)
    monkeypatch.setattr(connection, "_try_begin_immediate", tried)
    return taken


def test_a_push_takes_two_write_transactions_and_a_push_of_replays_one(
    world, client, auth, db, monkeypatch
):
    v1 = world.visits["v1"]
    records = [report(v1, "not_home"), report(v1, "refused")]
    push(client, auth, "agent1", [report(v1, "not_home")])  # the day's first request
    taken = _counting_write_transactions(monkeypatch)
    push(client, auth, "agent1", records)
    assert len(taken) == 2  # the records, then the answer's ledger entries
    before = ledger_head(db)
    taken.clear()
    again = push(client, auth, "agent1", records)
    assert [o["status"] for o in again] == ["duplicate", "duplicate"]
    assert len(taken) == 1  # the push's log and the answer's entries, one commit
    assert ledger_head(db) > before


def test_a_push_of_replays_whose_ledger_append_fails_writes_nothing(
    world, client, auth, db, monkeypatch
):
    v1 = world.visits["v1"]
    records = [report(v1, "not_home")]
    push(client, auth, "agent1", records)
    pushes = db.execute("SELECT device_id, last_push_at, clock_skew_s FROM device_sync").fetchall()
    before = ledger_head(db)

    def failing(db, entries):
        raise RuntimeError("the ledger's disk went away")

    monkeypatch.setattr(ledger_rows, "append", failing)
    # Sent with another clock reading: the push log would record another skew.
    body = {"device_time": iso(T0 + timedelta(minutes=5)), "records": records}
    failed = client.post(f"{API}/sync/push", json=body, headers=auth.headers("agent1"))
    assert failed.status_code == 500
    # The push's log was in the same transaction as the entries: both rolled back.
    assert (
        db.execute("SELECT device_id, last_push_at, clock_skew_s FROM device_sync").fetchall()
        == pushes
    )
    assert ledger_head(db) == before


def test_server_timing_names_the_wait_for_the_lock_and_the_commits(
    world, make_app, auth, monkeypatch
):
    client = make_app(SERVER_TIMING=1).test_client()
    body = {"device_time": iso(T0), "records": [report(world.visits["v1"], "not_home")]}
    answer = client.post(f"{API}/sync/push", json=body, headers=auth.headers("agent1"))
    assert answer.status_code == 200
    phases = dict(part.split(";dur=") for part in answer.headers["Server-Timing"].split(", "))
    assert {"validate", "lock", "facts", "reconcile", "store", "commit", "ledger"} <= set(phases)
    assert all(float(ms) >= 0 for ms in phases.values())
