"""Anomalies: each kind raised by a scenario built to trigger it, none on a clean day, and
every anomaly pointing at the ledger entries behind it."""

import json
from datetime import timedelta

import pytest

from server.clock import to_iso
from server.services.anomalies import scan_anomalies
from server.storage import ledger as ledger_rows
from server.storage.connection import transaction
from tests.api.test_sync import push, report
from tests.conftest import T0, TODAY

API = "/api/v1/audit/anomalies"
KINDS = (
    "no_assignment",
    "outside_working_hours",
    "unusual_volume",
    "purge_unacknowledged",
    "cards_without_reports",
)


def relogin(auth, *users):
    for user in users:
        auth.sessions.pop(user, None)


def insert_entries(db, *entries):
    """Ledger rows as the app writes them (chained through its own append)."""
    rows = [
        {
            "occurred_at": to_iso(e["at"]),
            "user_id": e["user_id"],
            "role": e.get("role", "agent"),
            "device_id": e.get("device_id", "phone-agent1"),
            "borrower_id": e["borrower_id"],
            "case_id": e.get("case_id"),
            "visit_id": e.get("visit_id"),
            "fields": json.dumps(["display_name", "home_address"]),
            "purpose": "home_visit",
            "endpoint": "GET /api/v1/sync/pull",
            "request_id": f"req-{i}-{e['borrower_id']}",
            "outcome": "served",
        }
        for i, e in enumerate(entries)
    ]
    with transaction(db):
        ledger_rows.append(db, rows)
    return [r["seq"] for r in rows]


def column(db, sql, *params):
    return [row[0] for row in db.execute(sql + " ORDER BY seq", list(params))]


def scan(client, auth, query=""):
    response = client.get(f"{API}{query}", headers=auth.headers("privacy"))
    assert response.status_code == 200, response.json
    return response.json


def of_kind(page, kind):
    return [a for a in page["items"] if a["kind"] == kind]


@pytest.fixture
def clean_day(world, client, auth, clock):
    """A normal working day: view, pull, plan, reassign, pull, acknowledge, report."""
    agent1 = auth.headers("agent1")
    client.get(f"/api/v1/me/day?date={TODAY}", headers=agent1)
    cursor = client.get("/api/v1/sync/pull", headers=agent1).json["cursor"]
    client.get("/api/v1/visits", headers=auth.headers("dispatcher"))
    clock.advance(minutes=5)
    moved = client.patch(
        f"/api/v1/visits/{world.visits['v1']}",
        json={"agent_id": world.users["agent2"]},
        headers={**auth.headers("dispatcher"), "If-Match": "1"},
    )
    assert moved.status_code == 200
    clock.advance(minutes=5)
    pulled = client.get(f"/api/v1/sync/pull?cursor={cursor}", headers=agent1).json
    assert pulled["purges"]
    client.post("/api/v1/sync/purge-acks", json={"visit_ids": [world.visits["v1"]]}, headers=agent1)
    client.get("/api/v1/sync/pull", headers=auth.headers("agent2"))
    push(client, auth, [report(world.visits["v2"], 1)])
    return world


def test_a_clean_day_raises_nothing(clean_day, client, auth, db, app):
    page = scan(client, auth)
    assert page["items"] == [] and page["total"] == 0
    assert page["kinds"] == list(KINDS)
    assert db.execute("SELECT count(*) FROM exposure_ledger").fetchone()[0] >= 8
    rt = app.extensions["doorstep"]
    assert scan_anomalies(db, rt, T0 - timedelta(days=1), T0 + timedelta(days=1), None) == []


def test_entry_with_no_assignment_in_force_is_flagged(clean_day, client, auth, db, clock):
    world = clean_day
    b1 = db.execute("SELECT borrower_id FROM cases WHERE id = ?", [world.cases["C-0001"]])
    b1 = b1.fetchone()[0]
    # agent1 served v1 after it went to agent2; agent2 served a borrower with no visit at all
    stale = {"at": clock.now, "user_id": world.users["agent1"], "borrower_id": b1}
    stray = {"at": clock.now, "user_id": world.users["agent2"], "borrower_id": 4242}
    seqs = insert_entries(
        db, {**stale, "visit_id": world.visits["v1"]}, {**stray, "device_id": "phone-agent2"}
    )
    found = of_kind(scan(client, auth, "?kind=no_assignment"), "no_assignment")
    by_reason = {a["detail"]["reason"]: a for a in found}
    assert set(by_reason) == {"assigned_elsewhere", "no_visit"}
    elsewhere = by_reason["assigned_elsewhere"]
    assert elsewhere["seqs"] == [seqs[0]] and elsewhere["seq_count"] == 1
    assert (elsewhere["user_id"], elsewhere["visit_id"], elsewhere["borrower_id"]) == (
        world.users["agent1"],
        world.visits["v1"],
        b1,
    )
    assert elsewhere["detail"]["assigned_agent_id"] == world.users["agent2"]
    assert by_reason["no_visit"]["seqs"] == [seqs[1]]
    # the entries named are the ledger's own
    row = next(db.query("SELECT * FROM exposure_ledger WHERE seq = ?", [seqs[0]]))
    assert row["visit_id"] == world.visits["v1"] and row["user_id"] == world.users["agent1"]


def test_cards_served_late_at_night_are_outside_working_hours(
    world, client, auth, db, make_app, clock
):
    clock.advance(hours=13, minutes=30)  # 23:30 in Shanghai, the card window still open
    relogin(auth, "agent1")
    late = client.get(f"/api/v1/me/day?date={TODAY}", headers=auth.headers("agent1"))
    assert late.status_code == 200 and len(late.json["visits"]) == 2
    seqs = column(db, "SELECT seq FROM exposure_ledger WHERE occurred_at = ?", to_iso(clock.now))
    relogin(auth, "privacy")
    response = client.get(API, headers=auth.headers("privacy"))
    for name, phones in db.execute("SELECT full_name, phones FROM borrowers"):
        for value in [name, *json.loads(phones)]:
            assert value not in response.get_data(as_text=True)
    page = response.json
    found = of_kind(page, "outside_working_hours")
    assert len(found) == 1 and len(page["items"]) == 1
    anomaly = found[0]
    assert anomaly["user_id"] == world.users["agent1"] and anomaly["day"] == TODAY
    assert anomaly["seqs"] == seqs and anomaly["seq_count"] == 2
    assert anomaly["detail"] == {
        "time_zone": "Asia/Shanghai",
        "working_hours": "07:00-22:00",
        "borrowers": 2,
    }
    # the same entry is fine where working hours are configured to end later
    later = make_app(ANOMALY_WORK_END="23:45").test_client()
    assert of_kind(scan(later, auth), "outside_working_hours") == []


def _day_of_borrowers(day_offset, user_id, count, first_borrower=1000):
    at = T0 + timedelta(days=day_offset, hours=-1)  # 09:00 in Shanghai
    return [
        {"at": at + timedelta(seconds=i), "user_id": user_id, "borrower_id": first_borrower + i}
        for i in range(count)
    ]


@pytest.mark.parametrize(
    ("baseline", "today", "flagged"),
    [
        (5, 35, True),  # threshold max(2 x 5, 30) = 30
        (5, 30, False),  # at the threshold, not above it
        (20, 35, False),  # threshold 2 x 20 = 40: a busy agent's normal day
        (20, 41, True),
    ],
)
def test_volume_is_judged_against_the_agents_own_baseline(
    world, client, auth, db, baseline, today, flagged
):
    agent = world.users["agent1"]
    history = [e for d in range(-14, 0) for e in _day_of_borrowers(d, agent, baseline)]
    insert_entries(db, *history)
    seqs = insert_entries(db, *_day_of_borrowers(0, agent, today))
    found = of_kind(scan(client, auth, "?kind=unusual_volume"), "unusual_volume")
    if not flagged:
        assert found == []
        return
    (anomaly,) = found
    assert (anomaly["user_id"], anomaly["day"]) == (agent, TODAY)
    assert anomaly["detail"] == {
        "borrowers": today,
        "baseline_median": float(baseline),
        "threshold": float(max(2 * baseline, 30)),
    }
    assert anomaly["seqs"] == seqs and anomaly["seq_count"] == today


def test_volume_thresholds_come_from_settings(world, client, auth, db, make_app):
    insert_entries(db, *_day_of_borrowers(0, world.users["agent1"], 12))
    assert of_kind(scan(client, auth, "?kind=unusual_volume"), "unusual_volume") == []
    lower_floor = make_app(ANOMALY_VOLUME_FLOOR=10).test_client()
    (anomaly,) = of_kind(scan(lower_floor, auth, "?kind=unusual_volume"), "unusual_volume")
    assert anomaly["detail"]["threshold"] == 10.0


def test_purge_never_acknowledged_is_flagged_after_the_deadline(world, client, auth, db, clock):
    agent1 = auth.headers("agent1")
    cursor = client.get("/api/v1/sync/pull", headers=agent1).json["cursor"]
    delivered = column(
        db,
        "SELECT seq FROM exposure_ledger WHERE device_id = 'phone-agent1' AND visit_id = ?",
        world.visits["v1"],
    )
    client.patch(
        f"/api/v1/visits/{world.visits['v1']}",
        json={"agent_id": world.users["agent2"]},
        headers={**auth.headers("dispatcher"), "If-Match": "1"},
    )
    clock.advance(minutes=1)
    ordered = client.get(f"/api/v1/sync/pull?cursor={cursor}", headers=agent1).json["purges"]
    assert [p["visit_id"] for p in ordered] == [world.visits["v1"]]

    clock.advance(hours=3)
    relogin(auth, "privacy", "agent1")
    assert of_kind(scan(client, auth), "purge_unacknowledged") == []  # not yet 24 h

    clock.advance(hours=22)
    relogin(auth, "privacy", "agent1")
    (anomaly,) = of_kind(scan(client, auth), "purge_unacknowledged")
    assert (anomaly["device_id"], anomaly["visit_id"], anomaly["user_id"]) == (
        "phone-agent1",
        world.visits["v1"],
        world.users["agent1"],
    )
    assert anomaly["seqs"] == delivered and anomaly["seq_count"] == 1
    assert anomaly["detail"]["reason"] == "reassigned"
    assert anomaly["detail"]["hours_unacknowledged"] == 25.0

    client.post(
        "/api/v1/sync/purge-acks",
        json={"visit_ids": [world.visits["v1"]]},
        headers=auth.headers("agent1"),
    )
    assert of_kind(scan(client, auth), "purge_unacknowledged") == []


@pytest.mark.parametrize(("extra_borrowers", "flagged"), [(10, True), (4, False)])
def test_cards_for_many_more_borrowers_than_reports(
    world, client, auth, db, clock, extra_borrowers, flagged
):
    agent = world.users["agent1"]
    client.get(f"/api/v1/me/day?date={TODAY}", headers=auth.headers("agent1"))
    push(client, auth, [report(world.visits["v1"], 1), report(world.visits["v2"], 2)])
    extra = [
        {"at": clock.now, "user_id": agent, "borrower_id": 5000 + i} for i in range(extra_borrowers)
    ]
    insert_entries(db, *extra)
    found = of_kind(scan(client, auth, "?kind=cards_without_reports"), "cards_without_reports")
    if not flagged:
        assert found == []  # 6 borrowers: too few to judge
        return
    (anomaly,) = found
    assert anomaly["user_id"] == agent
    assert anomaly["detail"] == {
        "borrowers": 12,
        "visits": 2,
        "reported_visits": 2,
        "threshold": 3.0,
    }
    # the day view's 2 cards, the 10 extra entries, and the push answer's flags (2 borrowers)
    expected = column(db, "SELECT seq FROM exposure_ledger WHERE user_id = ?", agent)
    assert anomaly["seqs"] == expected and anomaly["seq_count"] == 14


def test_period_kind_and_paging_are_validated(world, client, auth, db, clock):
    privacy = auth.headers("privacy")
    too_long = client.get(
        f"{API}?since=2026-01-01T00:00:00Z&until=2026-03-01T00:00:00Z", headers=privacy
    )
    assert too_long.status_code == 422 and too_long.json["error"]["field"] == "since"
    assert client.get(f"{API}?kind=gossip", headers=privacy).status_code == 422
    insert_entries(
        db,
        {"at": clock.now, "user_id": world.users["agent1"], "borrower_id": 1},
        {"at": clock.now, "user_id": world.users["agent2"], "borrower_id": 2},
    )
    first = scan(client, auth, "?kind=no_assignment&limit=1")
    assert first["total"] == 2 and len(first["items"]) == 1 and first["next_after"] == 1
    second = scan(client, auth, "?kind=no_assignment&limit=1&after=1")
    assert second["next_after"] is None
    assert first["items"][0]["user_id"] != second["items"][0]["user_id"]
    assert scan(client, auth, "?kind=unusual_volume")["items"] == []
