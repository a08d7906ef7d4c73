"""A push that finds another push holding the write lock reconciles its batch while it
waits, and under the lock keeps those outcomes only if every fact they were decided on is
still the same (sync_push.push, connection.transaction's while_waiting). A push that finds
the lock free reconciles under it, once."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from server.services import sync_push
from server.storage.connection import open_db
from sync.records import AgentFacts, CaseFacts, ServerFacts, VisitFacts
from tests.api.lifecycle_steps import API, iso, push, report
from tests.conftest import T0


def _counting(monkeypatch) -> tuple[list[int], threading.Event]:
    """Calls of reconcile_batch by the push, and an event set after each."""
    calls: list[int] = []
    done = threading.Event()
    reconcile = sync_push.reconcile_batch

    def counted(*args, **kwargs):
        outcomes = reconcile(*args, **kwargs)
        calls.append(len(outcomes))
        done.set()
        return outcomes

    monkeypatch.setattr(sync_push, "reconcile_batch", counted)
    return calls, done


def _push_in_thread(client, auth, records: list[dict]) -> tuple[threading.Thread, list]:
    answers: list = []
    body = {"device_time": iso(T0), "records": records}

    def run() -> None:
        answers.append(client.post(f"{API}/sync/push", json=body, headers=auth.headers("agent1")))

    thread = threading.Thread(target=run)
    thread.start()
    return thread, answers


def _flag_codes(outcome: dict) -> set[str]:
    return {flag["code"] for flag in outcome.get("flags", [])}


@pytest.mark.sqlite_only  # SQLite's write lock is tried first; PostgreSQL's is waited for
def test_a_push_waiting_for_the_lock_keeps_what_it_reconciled_while_waiting(
    world, make_app, auth, monkeypatch
):
    app = make_app(SERVER_TIMING=1)
    client = app.test_client()
    push(client, auth, "agent1", [report(world.visits["v1"], "not_home")])  # the day's first
    calls, done = _counting(monkeypatch)
    records = [report(world.visits["v1"], "not_home"), report(world.visits["v1"], "refused")]
    other = open_db(app.config["DATABASE"])
    other.conn.execute("BEGIN IMMEDIATE")  # another device's push, storing
    try:
        thread, answers = _push_in_thread(client, auth, records)
        assert done.wait(10), "the push did not reconcile while it waited"
        assert thread.is_alive()  # it is waiting for the lock
    finally:
        other.conn.execute("COMMIT")
        other.conn.close()
    thread.join(10)
    (answer,) = answers
    assert answer.status_code == 200, answer.json
    assert [o["status"] for o in answer.json["outcomes"]] == ["flagged", "flagged"]
    assert calls == [2]  # reconciled once, ahead of the lock; the facts were the same
    phases = dict(part.split(";dur=") for part in answer.headers["Server-Timing"].split(", "))
    assert {"facts_ahead", "reconcile_ahead", "facts", "store"} <= set(phases)
    stored = open_db(app.config["DATABASE"])
    ids = sorted(r["id"] for r in records)
    rows = stored.execute(
        "SELECT id, status FROM sync_records WHERE id IN (?, ?) ORDER BY id", ids
    ).fetchall()
    assert rows == [(ids[0], "flagged"), (ids[1], "flagged")]
    stored.conn.close()


@pytest.mark.sqlite_only
def test_a_fact_that_changed_while_the_push_waited_is_reconciled_again_under_the_lock(
    world, make_app, auth, monkeypatch
):
    app = make_app()
    client = app.test_client()
    v1 = world.visits["v1"]
    push(client, auth, "agent1", [report(v1, "not_home")])  # the day's first request
    calls, done = _counting(monkeypatch)
    records = [report(v1, "not_home")]
    other = open_db(app.config["DATABASE"])
    other.conn.execute("BEGIN IMMEDIATE")
    try:
        thread, answers = _push_in_thread(client, auth, records)
        assert done.wait(10), "the push did not reconcile while it waited"
        # The dispatcher cancels the visit meanwhile, in the transaction the push waits on.
        other.conn.execute("UPDATE visits SET status = 'cancelled' WHERE id = ?", [v1])
    finally:
        other.conn.execute("COMMIT")
        other.conn.close()
    thread.join(10)
    (answer,) = answers
    assert answer.status_code == 200, answer.json
    assert calls == [1, 1]  # ahead of the lock, then again with the facts as they now are
    (outcome,) = answer.json["outcomes"]
    assert "visit_cancelled" in _flag_codes(outcome)


def test_a_push_that_finds_the_lock_free_reconciles_once_under_it(
    world, client, auth, db, monkeypatch
):
    calls, _ = _counting(monkeypatch)
    reads: list[int] = []
    server_facts = sync_push.server_facts

    def counted_facts(*args, **kwargs):
        reads.append(1)
        return server_facts(*args, **kwargs)

    monkeypatch.setattr(sync_push, "server_facts", counted_facts)
    body = {"device_time": iso(T0), "records": [report(world.visits["v1"], "not_home")]}
    answer = client.post(f"{API}/sync/push", json=body, headers=auth.headers("agent1"))
    assert answer.status_code == 200, answer.json
    assert calls == [1]
    assert reads == [1]  # no facts read twice when no one else was writing


@pytest.mark.postgresql_only
def test_on_postgresql_a_push_waits_for_the_lock_and_reconciles_under_it(
    world, make_app, auth, monkeypatch
):
    app = make_app()
    client = app.test_client()
    v1 = world.visits["v1"]
    push(client, auth, "agent1", [report(v1, "not_home")])  # the day's first request
    calls, done = _counting(monkeypatch)
    other = open_db(app.config["DATABASE"])
    other.conn.execute("BEGIN IMMEDIATE")  # the store's advisory write lock
    try:
        thread, answers = _push_in_thread(client, auth, [report(v1, "not_home")])
        assert not done.wait(1)  # nothing reconciled while the lock is held
        other.conn.execute("UPDATE visits SET status = 'cancelled' WHERE id = ?", [v1])
    finally:
        other.conn.execute("COMMIT")
        other.conn.close()
    thread.join(10)
    (answer,) = answers
    assert answer.status_code == 200, answer.json
    assert calls == [1]
    assert "visit_cancelled" in _flag_codes(answer.json["outcomes"][0])


_VISITS = {
    11: VisitFacts(
        id=11,
        case=CaseFacts(
            id=5,
            time_zone="Asia/Shanghai",
            home_lat=31.2,
            home_lon=121.4,
            home_visit_times=(datetime(2026, 11, 30, 2, 0, tzinfo=UTC),),
            agreement_ids=frozenset({"a1"}),
        ),
        agent_id=7,
        status="planned",
        visit_date=date(2026, 12, 3),
        window_start="09:00",
        window_end="12:00",
        previous_agent_ids=frozenset({7, 9}),
    )
}


def _facts(**changes) -> ServerFacts:
    base = ServerFacts(
        agent=AgentFacts(id=7, badge_number="B-7"),
        visits={},
        complete_blobs=frozenset({"b" * 64, "a" * 64, "c" * 64}),
        device_sent_at=datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
    )
    return replace(base, **changes)


def test_facts_are_the_same_only_when_they_read_the_same():
    same = sync_push._same_facts
    assert same(_facts(), _facts())
    # Facts of every type a push reads: visits keyed by id, their cases and moments.
    assert same(_facts(visits=_VISITS), _facts(visits=dict(_VISITS)))
    assert not same(_facts(visits=_VISITS), _facts())
    # The same moment at another UTC offset is equal, but does not read the same.
    elsewhere = datetime(2026, 12, 3, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    assert _facts().device_sent_at == elsewhere
    assert not same(_facts(), _facts(device_sent_at=elsewhere))
    assert not same(_facts(), _facts(agent=AgentFacts(id=7, badge_number="B-8")))
    assert not same(_facts(), _facts(id_matches={"r1": True}))
    moved = replace(_VISITS[11], case=replace(_VISITS[11].case, home_lat=-0.0))
    at_zero = replace(_VISITS[11], case=replace(_VISITS[11].case, home_lat=0.0))
    assert not same(_facts(visits={11: moved}), _facts(visits={11: at_zero}))
    assert not same(_facts(id_matches={"r1": 1}), _facts(id_matches={"r1": True}))
