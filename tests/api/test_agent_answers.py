"""No borrower fact leaves through a side door: what an agent's push and pull answers say
about flags, against what reviewers read of the same records in GET /records."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import pytest

from tests.conftest import T0, TODAY

# Made-up positions, every one far outside the geofence of borrower 1's home (31.201,121.401).
MADE_UP_POSITIONS = [(31.30, 121.50), (31.25, 121.45), (31.10, 121.30)]


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def report(visit_id, seq, lat, lon, arrived, outcome="not_home"):
    return {
        "id": str(uuid.uuid4()),
        "kind": "visit_report",
        "visit_id": visit_id,
        "device_seq": seq,
        "recorded_at": iso(T0 - timedelta(minutes=1)),
        "body": {
            "arrived_at": iso(arrived),
            "outcome": outcome,
            "location": {"lat": lat, "lon": lon, "accuracy_m": 5},
        },
    }


def push(client, headers, records):
    body = {"device_time": iso(T0), "records": records}
    response = client.post("/api/v1/sync/push", json=body, headers=headers)
    assert response.status_code == 200, response.json
    return response.json["outcomes"]


def reviewer_records(client, auth, visit_id):
    response = client.get(
        f"/api/v1/records?visit_id={visit_id}", headers=auth.headers("dispatcher")
    )
    assert response.status_code == 200
    return {r["id"]: r for r in response.json["items"]}


def reassign(client, auth, visit_id, agent_id):
    dispatcher = auth.headers("dispatcher")
    version = client.get(f"/api/v1/visits/{visit_id}", headers=dispatcher).json["version"]
    moved = client.patch(
        f"/api/v1/visits/{visit_id}",
        json={"agent_id": agent_id},
        headers={**dispatcher, "If-Match": str(version)},
    )
    assert moved.status_code == 200, moved.json


def visit_no_longer_held(world, client, auth):
    """agent1's visit to borrower 1, reassigned to agent2 while agent1 was offline."""
    reassign(client, auth, world.visits["v1"], world.users["agent2"])
    return world.visits["v1"]


def visit_not_yet_held(world, client, auth):
    """A visit to borrower 2 planned for agent1 in ten days: its card is not out yet."""
    response = client.post(
        "/api/v1/visits",
        json={
            "case_id": world.cases["C-0001"],
            "agent_id": world.users["agent1"],
            "visit_date": (date.fromisoformat(TODAY) + timedelta(days=10)).isoformat(),
            "window_start": "09:00",
            "window_end": "10:00",
            "notice": {"kind": "appointment"},
        },
        headers=auth.headers("dispatcher"),
    )
    assert response.status_code == 201, response.json
    return response.json["visit"]["id"]


def without_ids(outcome):
    return {k: v for k, v in outcome.items() if k != "record_id"}


@pytest.mark.parametrize("scenario", [visit_no_longer_held, visit_not_yet_held])
def test_made_up_positions_locate_nothing_for_a_visit_whose_card_the_agent_may_not_hold(
    world, client, auth, scenario
):
    visit_id = scenario(world, client, auth)
    headers = auth.headers("agent1")
    answers, sent = [], []
    for n, (lat, lon) in enumerate(MADE_UP_POSITIONS):
        # Eight days apart, so no other rule sees the three reports as one another's.
        record = report(visit_id, n + 1, lat, lon, T0 - timedelta(days=8 * n, minutes=30))
        sent.append(record)
        (outcome,) = push(client, headers, [record])
        answers.append(outcome)
        text = json.dumps(outcome)
        assert "distance" not in text and " m from" not in text
        assert "location_mismatch" not in text and "31.201" not in text
    assert without_ids(answers[0]) == without_ids(answers[1]) == without_ids(answers[2])

    pulled = client.get("/api/v1/sync/pull", headers=headers).json["outcomes"]
    assert len(pulled) == 3
    assert all(without_ids(o) == without_ids(pulled[0]) for o in pulled)
    assert "distance" not in json.dumps(pulled)

    # Reviewers read the same records with everything the rules found.
    stored = reviewer_records(client, auth, visit_id)
    distances = set()
    for record in sent:
        (flag,) = [f for f in stored[record["id"]]["flags"] if f["code"] == "location_mismatch"]
        assert (
            flag["message"]
            == f"Report made {flag['details']['distance_m']:.0f} m from the home address."
        )
        distances.add(flag["details"]["distance_m"])
    assert len(distances) == 3


def test_the_agent_holding_the_card_learns_outside_the_geofence_but_not_how_far(
    world, client, auth
):
    (outcome,) = push(
        client, auth.headers("agent1"), [report(world.visits["v1"], 1, 31.30, 121.50, T0)]
    )
    (flag,) = [f for f in outcome["flags"] if f["code"] == "location_mismatch"]
    assert flag == {
        "code": "location_mismatch",
        "message": "Report made outside the geofence of the home address.",
        "details": {"allowed_m": 505.0, "accuracy_m": 5.0},
    }
    stored = reviewer_records(client, auth, world.visits["v1"])[outcome["record_id"]]
    (full,) = [f for f in stored["flags"] if f["code"] == "location_mismatch"]
    assert full["details"]["distance_m"] > 10_000


def test_an_id_check_for_a_visit_no_longer_held_answers_nothing(world, client, auth, db):
    national_id = db.execute(
        "SELECT b.national_id FROM borrowers b JOIN cases c ON c.borrower_id = b.id WHERE c.id = ?",
        [world.cases["C-0001"]],
    ).fetchone()[0]
    visit_id = visit_no_longer_held(world, client, auth)
    check = {
        "id": str(uuid.uuid4()),
        "kind": "id_confirmation",
        "visit_id": visit_id,
        "device_seq": 1,
        "recorded_at": iso(T0),
        "body": {"confirmation_kind": "borrower_identity", "id_last6": national_id[-6:]},
    }
    (outcome,) = push(client, auth.headers("agent1"), [check])
    assert outcome["id_verification"] is None
    assert outcome["status"] == "flagged"  # reassigned: the agent's own news
    assert {f["code"] for f in outcome["flags"]} == {"visit_reassigned"}
    # Not even compared (it used to be, and reviewers read "match"): the typed characters
    # of a visit whose card the agent may not hold are never checked against the number.
    stored = reviewer_records(client, auth, visit_id)[check["id"]]
    assert stored["id_verification"] == "not_compared"
    assert "id_not_compared" in {f["code"] for f in stored["flags"]}


def test_visit_frequency_carries_no_other_agents_visit_times(world, client, auth):
    v1 = world.visits["v1"]
    reassign(client, auth, v1, world.users["agent2"])
    # Nobody home: the visit is attempted, and may be given back to agent1 for another try.
    theirs = report(v1, 1, 31.201, 121.401, T0 - timedelta(hours=5), outcome="not_home")
    push(client, auth.headers("agent2"), [theirs])
    reassign(client, auth, v1, world.users["agent1"])
    agent1 = auth.headers("agent1")

    first = report(v1, 1, 31.201, 121.401, T0 - timedelta(minutes=30))
    (outcome,) = push(client, agent1, [first])
    assert "visit_frequency_exceeded" not in {f["code"] for f in outcome["flags"]}
    stored = reviewer_records(client, auth, v1)[first["id"]]
    (full,) = [f for f in stored["flags"] if f["code"] == "visit_frequency_exceeded"]
    their_time = full["details"]["other_visits"][0]
    assert their_time == "2026-11-23T21:00:00+00:00"  # agent2's arrival

    second = report(v1, 2, 31.201, 121.401, T0 - timedelta(minutes=10))
    (outcome,) = push(client, agent1, [second])
    (flag,) = [f for f in outcome["flags"] if f["code"] == "visit_frequency_exceeded"]
    assert flag["details"] == {"allowed": 1, "period_days": 7, "own_visits_in_period": 2}
    for answer in (outcome, *client.get("/api/v1/sync/pull", headers=agent1).json["outcomes"]):
        text = json.dumps(answer)
        assert (
            their_time not in text and "T21:00" not in text and 'visits_in_period": 3' not in text
        )
    stored = reviewer_records(client, auth, v1)[second["id"]]
    (full,) = [f for f in stored["flags"] if f["code"] == "visit_frequency_exceeded"]
    assert full["details"]["visits_in_period"] == 3 and len(full["details"]["other_visits"]) == 2


def test_another_agents_badge_does_not_count_for_this_agent(world, client, auth):
    v1 = world.visits["v1"]
    reassign(client, auth, v1, world.users["agent2"])
    badge = {
        "id": str(uuid.uuid4()),
        "kind": "id_confirmation",
        "visit_id": v1,
        "device_seq": 1,
        "recorded_at": iso(T0 - timedelta(hours=1)),
        "body": {
            "confirmation_kind": "agent_credential",
            "badge_number": "B-2",
            "borrower_acknowledged": True,
        },
    }
    push(client, auth.headers("agent2"), [badge])
    reassign(client, auth, v1, world.users["agent1"])
    visit = report(v1, 1, 31.201, 121.401, T0 - timedelta(minutes=30), outcome="met_borrower")
    (outcome,) = push(client, auth.headers("agent1"), [visit])
    (flag,) = [f for f in outcome["flags"] if f["code"] == "credential_not_shown_first"]
    assert flag["message"] == "Your credential was not recorded before contact began."
    assert "credential_at" not in flag["details"]
    assert iso(T0 - timedelta(hours=1))[:16] not in json.dumps(outcome)


def test_a_case_flag_reaches_the_agent_only_if_the_policy_puts_case_flags_on_its_card(
    world, client, auth, db
):
    db.execute("UPDATE cases SET hardship = 1 WHERE id = ?", [world.cases["C-0002"]])
    db.conn.commit()
    (outcome,) = push(
        client, auth.headers("agent1"), [report(world.visits["v2"], 1, 31.202, 121.402, T0)]
    )
    assert "case_hardship" not in {f["code"] for f in outcome["flags"]}
    stored = reviewer_records(client, auth, world.visits["v2"])[outcome["record_id"]]
    assert "case_hardship" in {f["code"] for f in stored["flags"]}
