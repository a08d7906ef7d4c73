"""Routes and assignments through the API: lawful times, start places, re-plans, acceptance."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from server import create_app
from sync.geo import haversine_m
from tests.conftest import T0, TODAY, case_row

API = "/api/v1"
SH = ZoneInfo("Asia/Shanghai")


def route_url(agent_id: int, kind: str = "route-proposal", day: str = TODAY) -> str:
    return f"{API}/agents/{agent_id}/days/{day}/{kind}"


def import_cases(client, headers, numbers, **overrides) -> dict[str, int]:
    body = "\n".join(json.dumps(case_row(n, **overrides)) for n in numbers)
    response = client.post(
        f"{API}/cases/import",
        data=body,
        headers={**headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.json
    cases = client.get(f"{API}/cases?limit=500", headers=headers).json["items"]
    return {c["external_id"]: c["id"] for c in cases}


def plan(client, headers, case_id, agent_id=None, window=(None, None)) -> dict:
    response = client.post(
        f"{API}/visits",
        json={
            "case_id": case_id,
            "agent_id": agent_id,
            "visit_date": TODAY,
            "window_start": window[0],
            "window_end": window[1],
            "notice": {"kind": "appointment"},
        },
        headers=headers,
    )
    assert response.status_code == 201, response.json
    return response.json["visit"]


def push_report(client, auth, visit_id, lat, lon, at=T0):
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    record = {
        "id": str(uuid.uuid4()),
        "kind": "visit_report",
        "visit_id": visit_id,
        "device_seq": 1,
        "recorded_at": stamp,
        "body": {
            "arrived_at": stamp,
            "outcome": "not_home",
            "location": {"lat": lat, "lon": lon, "accuracy_m": 10},
        },
    }
    response = client.post(
        f"{API}/sync/push",
        json={"device_time": stamp, "records": [record]},
        headers=auth.headers("agent1"),
    )
    assert response.status_code == 200 and response.json["outcomes"][0]["status"] in (
        "accepted",
        "flagged",
    ), response.json


def local(value: str, zone: ZoneInfo = SH) -> time:
    return datetime.fromisoformat(value).astimezone(zone).time()


def test_a_proposal_is_lawful_and_can_be_applied(world, client, auth):
    headers = auth.headers("dispatcher")
    agent = world.users["agent2"]

    response = client.post(route_url(agent), headers=headers)

    assert response.status_code == 200, response.json
    body = response.json
    # Today at 10:00 Shanghai: the agent sets off now from its home base.
    assert body["start"]["kind"] == "home"
    assert datetime.fromisoformat(body["start"]["time"]) == T0
    assert (body["speed_kmh"], body["service_s"]) == (25.0, 1200)
    by_id = {s["visit_id"]: s for s in body["stops"]}
    assert set(by_id) == {world.visits["v3"], world.visits["v4"]}
    v4 = by_id[world.visits["v4"]]
    assert time(14) <= local(v4["arrival"]) <= time(16)
    for stop in body["stops"]:
        assert time(8) <= local(stop["arrival"]) and local(stop["departure"]) <= time(21)
        assert stop["leg_distance_m"] > 0 and stop["problems"] == []
    assert body["unscheduled"] == [] and body["late_stops"] == 0
    assert body["total_distance_m"] == sum(s["leg_distance_m"] for s in body["stops"])
    applied = client.put(route_url(agent, "order"), headers=headers, json={"visits": body["order"]})
    assert applied.status_code == 200
    assert [v["id"] for v in applied.json["visits"]] == [o["id"] for o in body["order"]]


def test_the_current_order_is_timed_and_its_problems_named(world, client, auth):
    headers = auth.headers("dispatcher")
    agent = world.users["agent1"]
    # v1's window is 09:00-11:00; starting at 11:30 makes the current order late for it.
    late = datetime(2026, 11, 24, 11, 30, tzinfo=SH).isoformat()

    response = client.get(
        route_url(agent, "route"), headers=headers, query_string={"start_time": late}
    )

    assert response.status_code == 200, response.json
    stops = {s["visit_id"]: s for s in response.json["stops"]}
    assert stops[world.visits["v1"]]["problems"] == ["late_for_window"]
    assert stops[world.visits["v1"]]["window_violation_s"] > 0
    assert response.json["late_stops"] == 1
    proposal = client.post(route_url(agent), headers=headers, query_string={"start_time": late})
    assert [u["visit_id"] for u in proposal.json["unscheduled"]] == [world.visits["v1"]]
    assert proposal.json["unscheduled"][0]["reason"] == "window_unreachable"
    assert proposal.json["late_stops"] == 0


def test_a_window_that_leaves_no_lawful_time_is_unscheduled(world, client, auth):
    headers = auth.headers("dispatcher")
    ids = import_cases(client, headers, [6])
    # Lawful to arrive at 20:50, not to stay twenty minutes past 21:00.
    visit = plan(client, headers, ids["C-0006"], world.users["agent1"], ("20:50", "21:00"))

    body = client.post(route_url(world.users["agent1"]), headers=headers).json

    assert {
        "visit_id": visit["id"],
        "version": visit["version"],
        "reason": "outside_lawful_hours",
    } in body["unscheduled"]
    assert body["order"][-1]["id"] == visit["id"]
    # With five-minute visits it fits.
    short = client.post(
        route_url(world.users["agent1"]), headers=headers, query_string={"service_s": 300}
    ).json
    assert visit["id"] in {s["visit_id"] for s in short["stops"]}


def test_start_places(world, client, auth, app):
    headers = auth.headers("dispatcher")
    agent = world.users["agent1"]

    no_depot = client.post(route_url(agent), headers=headers, query_string={"start": "depot"})
    assert no_depot.status_code == 422
    assert no_depot.json["error"]["field"] == "start"
    assert no_depot.json["error"]["details"]["reason"] == "no_depot"

    # Settings are fixed when the app starts: a second app on the same store has a depot.
    with_depot = create_app(
        {
            "DATABASE": app.config["DATABASE"],
            "STATE_DIR": app.extensions["doorstep"].settings["STATE_DIR"],
            "CLOCK": world.clock,
            "RATE_PER_DEVICE_PER_MIN": 0,
            "RATE_PER_ADDRESS_PER_MIN": 0,
            "ROUTE_DEPOT": "31.30,121.50",
        }
    ).test_client()
    home = client.post(route_url(agent), headers=headers).json
    depot = with_depot.post(route_url(agent), headers=headers, query_string={"start": "depot"})
    assert depot.status_code == 200, depot.json
    depot = depot.json
    assert depot["start"]["kind"] == "depot"
    assert depot["stops"][0]["leg_distance_m"] != home["stops"][0]["leg_distance_m"]

    nothing_yet = client.post(
        route_url(agent), headers=headers, query_string={"start": "last_position"}
    )
    assert nothing_yet.status_code == 422
    assert nothing_yet.json["error"]["details"]["reason"] == "no_position"


def test_mid_day_replan_from_the_last_report_with_the_remaining_visits(world, client, auth):
    headers = auth.headers("dispatcher")
    agent = world.users["agent1"]
    push_report(client, auth, world.visits["v1"], 31.26, 121.45)
    world.clock.advance(hours=3)  # 13:00 in Shanghai
    auth.login("dispatcher")
    headers = auth.headers("dispatcher")

    response = client.post(
        route_url(agent), headers=headers, query_string={"start": "last_position"}
    )

    assert response.status_code == 200, response.json
    body = response.json
    assert body["start"]["kind"] == "last_position"
    assert body["start"]["visit_id"] == world.visits["v1"]
    assert "lat" not in body["start"] and "lon" not in body["start"]
    assert body["done"] == [world.visits["v1"]]
    assert [s["visit_id"] for s in body["stops"]] == [world.visits["v2"]]
    assert [o["id"] for o in body["order"]] == [world.visits["v1"], world.visits["v2"]]
    (stop,) = body["stops"]
    assert datetime.fromisoformat(stop["arrival"]) > T0 + timedelta(hours=3)
    # v2 is borrower 2's home (31.202, 121.402); the leg runs from the fix.
    assert stop["leg_distance_m"] == round(haversine_m(31.26, 121.45, 31.202, 121.402) * 1.3)


@pytest.mark.parametrize(
    "query",
    [
        {"start": "moon"},
        {"speed_kmh": 0},
        {"speed_kmh": "fast"},
        {"service_s": -1},
        {"start_time": "2026-11-24T12:00:00+08:00", "end_time": "2026-11-24T11:00:00+08:00"},
        {"zz_unknown": 1},
    ],
)
def test_bad_options_are_4xx_with_the_field(world, client, auth, query):
    response = client.post(
        route_url(world.users["agent1"]), headers=auth.headers("dispatcher"), query_string=query
    )
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "validation_failed"


def test_unknown_agent_or_not_an_agent_is_404(world, client, auth):
    headers = auth.headers("dispatcher")
    assert client.post(route_url(999999), headers=headers).status_code == 404
    assert (
        client.get(route_url(world.users["dispatcher"], "route"), headers=headers).status_code
        == 404
    )


def assignment_world(world, client, headers) -> list[dict]:
    ids = import_cases(client, headers, range(6, 16))
    windows = [("14:00", "16:00"), (None, None), ("09:00", "12:00")]
    return [plan(client, headers, ids[f"C-{n:04d}"], None, windows[n % 3]) for n in range(6, 16)]


def test_an_assignment_is_proposed_balanced_and_accepted(world, client, auth, db):
    headers = auth.headers("dispatcher")
    free = assignment_world(world, client, headers)
    agents = [world.users["agent1"], world.users["agent2"]]

    response = client.post(
        f"{API}/days/{TODAY}/assignment-proposal", headers=headers, json={"agent_ids": agents}
    )

    assert response.status_code == 200, response.json
    body = response.json
    free_ids = {v["id"] for v in free}
    handed = [v for a in body["agents"] for v in a["new_visits"]]
    assert sorted(handed + [u["visit_id"] for u in body["unassigned"]]) == sorted(free_ids)
    assert len(handed) == len(free_ids)  # everything fits in two days
    # 14 visits, two agents: at most the even share plus the slack each.
    assert body["capacity"] == 7 + 2
    loads = [len(a["order"]) for a in body["agents"]]
    assert max(loads) <= body["capacity"] and sum(loads) == 14
    first, second = body["agents"]
    # Each agent keeps what it already had.
    assert {world.visits["v1"], world.visits["v2"]} <= {o["id"] for o in first["order"]}
    assert {world.visits["v3"], world.visits["v4"]} <= {o["id"] for o in second["order"]}
    for agent in body["agents"]:
        for stop in agent["stops"]:
            assert time(8) <= local(stop["arrival"]) and local(stop["departure"]) <= time(21)

    accepted = client.post(f"{API}/days/{TODAY}/assignment", headers=headers, json=body["accept"])

    assert accepted.status_code == 200, accepted.json
    stored = {r["id"]: r for r in db.query("SELECT id, agent_id, route_order FROM visits")}
    for item in body["accept"]["visits"]:
        assert (stored[item["id"]]["agent_id"], stored[item["id"]]["route_order"]) == (
            item["agent_id"],
            item["route_order"],
        )
    logged = db.execute(
        "SELECT count(*) FROM staff_audit WHERE action = 'assignment_accepted'"
    ).fetchone()[0]
    assert logged == 1
    # The same body again names versions that moved on: nothing changes.
    again = client.post(f"{API}/days/{TODAY}/assignment", headers=headers, json=body["accept"])
    assert again.status_code == 409 and again.json["error"]["code"] == "version_conflict"


def test_an_edited_assignment_is_applied_as_edited(world, client, auth, db):
    headers = auth.headers("dispatcher")
    free = assignment_world(world, client, headers)
    target = free[0]

    response = client.post(
        f"{API}/days/{TODAY}/assignment",
        headers=headers,
        json={
            "visits": [
                {
                    "id": target["id"],
                    "version": target["version"],
                    "agent_id": world.users["agent2"],
                }
            ]
        },
    )

    assert response.status_code == 200, response.json
    (visit,) = response.json["visits"]
    assert (visit["agent_id"], visit["route_order"], visit["version"]) == (
        world.users["agent2"],
        None,
        2,
    )


def test_a_team_by_region_and_agents_without_a_start(world, client, auth):
    admin, headers = auth.headers("admin"), auth.headers("dispatcher")
    for name, home in (("east1", {"home_lat": 31.22, "home_lon": 121.45}), ("east2", {})):
        created = client.post(
            f"{API}/users",
            json={
                "username": name,
                "password": "correct-horse-battery",
                "role": "agent",
                "badge_number": f"E-{name}",
                "region": "east",
                "time_zone": "Asia/Shanghai",
                **home,
            },
            headers=admin,
        )
        assert created.status_code == 201, created.json
    free = assignment_world(world, client, headers)

    body = client.post(
        f"{API}/days/{TODAY}/assignment-proposal", headers=headers, json={"region": "east"}
    ).json

    assert [a["agent_id"] for a in body["agents"]] == [created.json["id"] - 1]
    assert body["skipped_agents"] == [{"agent_id": created.json["id"], "reason": "no_home_base"}]
    assert body["capacity"] is None  # one agent: nothing to balance
    assert len(body["agents"][0]["new_visits"]) + len(body["unassigned"]) == len(free)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "agent_ids"),
        ({"agent_ids": [999999]}, "agent_ids"),
        ({"region": "nowhere"}, "region"),
        ({"agent_ids": [], "region": "x"}, "agent_ids"),
        ({"agent_ids": [1], "visit_ids": ["a"]}, "visit_ids"),
    ],
)
def test_bad_assignment_requests_are_422(world, client, auth, body, field):
    response = client.post(
        f"{API}/days/{TODAY}/assignment-proposal", headers=auth.headers("dispatcher"), json=body
    )
    assert response.status_code == 422, response.json
    error = response.json["error"]
    assert field in (error["field"] or "") or field in json.dumps(error["details"])


def test_visits_of_another_day_or_cancelled_cannot_be_handed_out(world, client, auth):
    headers = auth.headers("dispatcher")
    cancelled = client.post(
        f"{API}/visits/{world.visits['v2']}/cancel", headers=headers, json={"version": 1}
    )
    assert cancelled.status_code == 200

    response = client.post(
        f"{API}/days/2026-11-25/assignment-proposal",
        headers=headers,
        json={
            "agent_ids": [world.users["agent1"]],
            "visit_ids": [world.visits["v1"], world.visits["v2"]],
        },
    )

    assert response.status_code == 422
    assert response.json["error"]["field"] == "visit_ids"
    assert sorted(response.json["error"]["details"]["ids"]) == sorted(
        [world.visits["v1"], world.visits["v2"]]
    )


@pytest.mark.parametrize(
    ("item", "status", "code"),
    [
        ({"version": 7}, 409, "version_conflict"),
        ({"agent_id": 999999}, 422, "invalid_input"),
        ({"id": 999999}, 422, "invalid_input"),
        ({"agent_id": "x"}, 422, "validation_failed"),
    ],
)
def test_bad_acceptances_change_nothing(world, client, auth, db, item, status, code):
    headers = auth.headers("dispatcher")
    good = {
        "id": world.visits["v2"],
        "version": 1,
        "agent_id": world.users["agent2"],
        "route_order": 1,
    }
    bad = {"id": world.visits["v1"], "version": 1, "agent_id": world.users["agent2"], **item}
    before = list(db.query("SELECT id, agent_id, version FROM visits ORDER BY id"))

    response = client.post(
        f"{API}/days/{TODAY}/assignment", headers=headers, json={"visits": [good, bad]}
    )

    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert list(db.query("SELECT id, agent_id, version FROM visits ORDER BY id")) == before


def test_an_acceptance_names_each_visit_once_and_for_its_day(world, client, auth):
    headers = auth.headers("dispatcher")
    item = {"id": world.visits["v1"], "version": 1, "agent_id": world.users["agent1"]}
    twice = client.post(
        f"{API}/days/{TODAY}/assignment", headers=headers, json={"visits": [item, item]}
    )
    assert twice.status_code == 422 and twice.json["error"]["field"] == "visits"
    other_day = client.post(
        f"{API}/days/2026-11-25/assignment", headers=headers, json={"visits": [item]}
    )
    assert other_day.status_code == 422 and other_day.json["error"]["field"] == "visits"
    empty = client.post(f"{API}/days/{TODAY}/assignment", headers=headers, json={"visits": []})
    assert empty.status_code == 422


def test_routes_and_assignments_are_for_dispatchers_only(world, client, auth):
    for user in ("agent1", "privacy", "admin"):
        headers = auth.headers(user)
        assert client.post(route_url(world.users["agent1"]), headers=headers).status_code == 403
        assert (
            client.post(
                f"{API}/days/{TODAY}/assignment-proposal", headers=headers, json={}
            ).status_code
            == 403
        )


def test_a_replan_after_the_day_is_over_schedules_nothing_and_says_why(world, client, auth):
    world.clock.advance(hours=12)  # 22:00 in Shanghai
    auth.login("dispatcher")

    response = client.post(route_url(world.users["agent1"]), headers=auth.headers("dispatcher"))

    assert response.status_code == 200, response.json
    assert response.json["stops"] == []
    reasons = {u["visit_id"]: u["reason"] for u in response.json["unscheduled"]}
    assert reasons == {
        world.visits["v1"]: "window_unreachable",
        world.visits["v2"]: "window_unreachable",
    }


def test_a_consented_evening_visit_is_routed_inside_the_consent(world, client, auth, db):
    """The borrower's recorded consent to visits 21:00-22:30 widens that day's lawful hours
    for their visit alone: the route schedules it in the evening (it would otherwise be
    `outside_lawful_hours`), and every other stop keeps the policy's hours."""
    headers = auth.headers("dispatcher")
    ids = import_cases(client, headers, [6])
    borrower = db.execute("SELECT borrower_id FROM cases WHERE id = ?", [ids["C-0006"]]).fetchone()
    consent = client.post(
        f"{API}/borrowers/{borrower[0]}/requests",
        json={
            "kind": "out_of_hours_consent",
            "source": "letter",
            "taken_at": (T0 - timedelta(days=3)).isoformat(),
            "window_start": "21:00",
            "window_end": "22:30",
            "valid_until": (T0 + timedelta(days=30)).isoformat(),
            "evidence": "Signed consent form, scan 2026-118",
        },
        headers=headers,
    )
    assert consent.status_code == 201, consent.json
    visit = plan(client, headers, ids["C-0006"], world.users["agent1"], ("21:10", "22:00"))

    # The agent works late that day (the shift would otherwise end at the lawful 21:00).
    late = {"end_time": f"{TODAY}T23:00:00+08:00"}
    body = client.post(route_url(world.users["agent1"]), headers=headers, query_string=late).json

    assert visit["id"] not in {u["visit_id"] for u in body["unscheduled"]}, body["unscheduled"]
    (stop,) = [s for s in body["stops"] if s["visit_id"] == visit["id"]]
    assert time(21, 10) <= local(stop["arrival"]) and local(stop["departure"]) <= time(22, 30)
    assert stop["problems"] == []
    others = [s for s in body["stops"] if s["visit_id"] != visit["id"]]
    assert all(local(s["departure"]) <= time(21) for s in others)  # theirs are unchanged
