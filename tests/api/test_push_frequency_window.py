"""The frequency rules read only the home visit reports that can count: those that arrived
within the policy's period (7 days by default) of the batch's earliest arrival. A report
older than that is not read and changes nothing; one inside still flags, also when the
batch itself was recorded long ago."""

from __future__ import annotations

import uuid
from datetime import timedelta

from server.services.push_facts import reports_reach
from server.storage import sync as sync_rows
from sync.records import IncomingRecord
from tests.conftest import T0

PERIOD = timedelta(days=7)


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def report(visit_id, seq, arrived):
    return {
        "id": str(uuid.uuid4()),
        "kind": "visit_report",
        "visit_id": visit_id,
        "device_seq": seq,
        "recorded_at": iso(T0 - timedelta(minutes=1)),
        "body": {
            "arrived_at": iso(arrived),
            "outcome": "not_home",
            "location": {"lat": 31.201, "lon": 121.401, "accuracy_m": 5},
        },
    }


def push(client, headers, records):
    body = {"device_time": iso(T0), "records": records}
    response = client.post("/api/v1/sync/push", json=body, headers=headers)
    assert response.status_code == 200, response.json
    return response.json["outcomes"]


def frequency(outcome):
    return [f for f in outcome["flags"] if f["code"] == "visit_frequency_exceeded"]


def case_of(db, visit_id):
    return db.execute("SELECT case_id FROM visits WHERE id = ?", [visit_id]).fetchone()[0]


def incoming(visit_id, arrived):
    return IncomingRecord.create(
        id=str(uuid.uuid4()),
        kind="visit_report",
        visit_id=visit_id,
        device_seq=1,
        recorded_at=T0,
        body={"arrived_at": arrived, "outcome": "not_home"},
    )


def test_a_report_from_before_the_period_is_not_read_and_does_not_flag(world, client, auth, db):
    agent1, v1 = auth.headers("agent1"), world.visits["v1"]
    old = report(v1, 1, T0 - PERIOD - timedelta(days=3))
    push(client, agent1, [old])
    arrived = T0 - timedelta(minutes=30)

    (outcome,) = push(client, agent1, [report(v1, 2, arrived)])

    assert outcome["status"] == "accepted" and frequency(outcome) == []
    case_id = case_of(db, v1)
    since = reports_reach([incoming(v1, arrived)], PERIOD)
    read = {r["id"] for r in sync_rows.records_for_cases(db, [case_id], since)}
    assert old["id"] not in read
    # The same read without a bound would have found it.
    assert old["id"] in {r["id"] for r in sync_rows.records_for_cases(db, [case_id], "")}


def test_a_report_inside_the_period_is_read_and_flags(world, client, auth, db):
    agent1, v1 = auth.headers("agent1"), world.visits["v1"]
    inside = report(v1, 1, T0 - PERIOD + timedelta(hours=1))
    push(client, agent1, [inside])
    arrived = T0 - timedelta(minutes=30)

    (outcome,) = push(client, agent1, [report(v1, 2, arrived)])

    (flag,) = frequency(outcome)
    assert flag["details"]["own_visits_in_period"] == 2
    since = reports_reach([incoming(v1, arrived)], PERIOD)
    read = sync_rows.records_for_cases(db, [case_of(db, v1)], since)
    assert inside["id"] in {r["id"] for r in read}


def test_the_window_follows_the_batchs_earliest_arrival_not_the_clock(world, client, auth):
    """A batch from a phone that was offline for months: its reports are judged against
    what happened then."""
    agent1, v1 = auth.headers("agent1"), world.visits["v1"]
    long_ago = T0 - timedelta(days=120)
    push(client, agent1, [report(v1, 1, long_ago)])

    near, later = report(v1, 2, long_ago + timedelta(days=2)), report(v1, 3, T0)
    outcomes = push(client, agent1, [later, near])

    assert frequency(outcomes[0]) == []
    (flag,) = frequency(outcomes[1])
    assert flag["details"]["own_visits_in_period"] == 2


def test_a_report_arriving_after_the_batch_still_counts(world, client, auth):
    """The period runs both ways: a report synced earlier that arrived after this one."""
    agent1, v1 = auth.headers("agent1"), world.visits["v1"]
    push(client, agent1, [report(v1, 1, T0 - timedelta(hours=1))])

    (outcome,) = push(client, agent1, [report(v1, 2, T0 - timedelta(days=3))])

    (flag,) = frequency(outcome)
    assert flag["details"]["own_visits_in_period"] == 2


def test_the_reach_is_the_earliest_arrival_less_the_period_and_a_margin():
    early, late = T0 - timedelta(days=40), T0
    reach = reports_reach([incoming(1, iso(late)), incoming(1, early)], PERIOD)
    assert reach == "2026-10-06T02:00:00.000000Z"  # 40 + 7 + 2 days before T0
    assert reports_reach([incoming(1, "not a time")], PERIOD) is None
    assert reports_reach([], PERIOD) is None
