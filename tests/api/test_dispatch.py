"""Dispatch: planning rules, optimistic concurrency, day order and route proposals."""

import json

from tests.conftest import TODAY


def _visit(client, auth, visit_id):
    return client.get(f"/api/v1/visits/{visit_id}", headers=auth.headers("dispatcher")).json


def test_plan_refuses_do_not_visit_and_warns_on_frequency_and_notice(world, client, auth, db):
    headers = auth.headers("dispatcher")
    refused = client.post(
        "/api/v1/visits",
        headers=headers,
        json={
            "case_id": world.cases["C-0005"],
            "agent_id": world.users["agent1"],
            "visit_date": TODAY,
        },
    )
    assert refused.status_code == 422
    assert refused.json["error"]["code"] == "dispatch_refused"
    assert refused.json["error"]["field"] == "case_id"
    assert (
        db.execute(
            "SELECT count(*) FROM visits WHERE case_id = ?", [world.cases["C-0005"]]
        ).fetchone()[0]
        == 0
    )
    again = client.post(
        "/api/v1/visits",
        headers=headers,
        json={
            "case_id": world.cases["C-0001"],
            "agent_id": world.users["agent1"],
            "visit_date": "2026-11-27",
        },
    )
    assert again.status_code == 201
    codes = {w["code"] for w in again.json["warnings"]}
    assert codes == {"visit_frequency_exceeded", "no_prior_notice"}


def test_window_outside_lawful_hours_is_refused(world, client, auth):
    response = client.post(
        "/api/v1/visits",
        headers=auth.headers("dispatcher"),
        json={
            "case_id": world.cases["C-0002"],
            "visit_date": "2026-12-10",
            "window_start": "21:30",
            "window_end": "22:30",
            "notice": {"kind": "letter"},
        },
    )
    assert response.status_code == 422
    assert response.json["error"]["code"] == "dispatch_refused"
    assert response.json["error"]["field"] == "window_start"


def test_unknown_and_read_only_fields_are_rejected(world, client, auth):
    headers = auth.headers("dispatcher")
    response = client.post(
        "/api/v1/visits",
        headers=headers,
        json={"case_id": world.cases["C-0002"], "visit_date": TODAY, "status": "completed"},
    )
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_failed"
    assert response.json["error"]["field"] == "status"
    patch = client.patch(
        f"/api/v1/visits/{world.visits['v1']}", headers=headers, json={"version": 1, "id": 77}
    )
    assert patch.status_code == 422 and patch.json["error"]["field"] == "id"
    assert _visit(client, auth, world.visits["v1"])["version"] == 1


def test_concurrent_edits_give_409_with_the_current_version(world, client, auth, db):
    a, b = auth.headers("dispatcher"), auth.headers("dispatcher")
    url = f"/api/v1/visits/{world.visits['v2']}"
    first = client.patch(url, headers={**a, "If-Match": "1"}, json={"notes": "ring twice"})
    assert first.status_code == 200 and first.json["visit"]["version"] == 2
    second = client.patch(url, headers={**b, "If-Match": "1"}, json={"notes": "knock"})
    assert second.status_code == 409
    assert second.json["error"]["code"] == "version_conflict"
    assert second.json["error"]["details"]["current_version"] == 2
    assert _visit(client, auth, world.visits["v2"])["notes"] == "ring twice"
    missing = client.patch(url, headers=a, json={"notes": "no version"})
    assert missing.status_code == 428 and missing.json["error"]["code"] == "version_required"
    history = [
        r["version"]
        for r in db.query(
            "SELECT version FROM visit_history WHERE visit_id = ? ORDER BY version",
            [world.visits["v2"]],
        )
    ]
    assert history == [1, 2]


def test_reassign_and_cancel_are_kept_in_the_visit_history(world, client, auth, db):
    headers = auth.headers("dispatcher")
    v1 = world.visits["v1"]
    moved = client.patch(
        f"/api/v1/visits/{v1}",
        headers=headers,
        json={"version": 1, "agent_id": world.users["agent2"]},
    )
    assert moved.status_code == 200
    cancelled = client.post(
        f"/api/v1/visits/{v1}/cancel",
        headers=headers,
        json={"version": 2, "reason": "borrower paid"},
    )
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    history = [
        (r["version"], r["agent_id"], r["status"])
        for r in db.query(
            "SELECT version, agent_id, status FROM visit_history WHERE visit_id = ? "
            "ORDER BY version",
            [v1],
        )
    ]
    a1, a2 = world.users["agent1"], world.users["agent2"]
    assert history == [(1, a1, "planned"), (2, a2, "planned"), (3, a2, "cancelled")]
    again = client.post(f"/api/v1/visits/{v1}/cancel", headers=headers, json={"version": 3})
    assert again.status_code == 409
    logged = list(
        db.query(
            "SELECT action, details FROM staff_audit WHERE target_type = 'visit' AND target_id = ? "
            "ORDER BY id",
            [str(v1)],
        )
    )
    assert [r["action"] for r in logged] == ["visit_created", "visit_updated", "visit_cancelled"]
    # privacy officers and admins read the staff log: the reason's text is not in it
    assert json.loads(logged[-1]["details"]) == {"reason_given": True}


def test_bulk_create_reports_each_item(world, client, auth):
    response = client.post(
        "/api/v1/visits/bulk",
        headers=auth.headers("dispatcher"),
        json={
            "visits": [
                {
                    "case_id": world.cases["C-0002"],
                    "visit_date": "2026-12-01",
                    "notice": {"kind": "sms"},
                },
                {"case_id": world.cases["C-0005"], "visit_date": "2026-12-01"},
                {"case_id": 424242, "visit_date": "2026-12-01"},
            ]
        },
    )
    assert response.status_code == 200
    assert (response.json["created"], response.json["refused"]) == (1, 2)
    results = response.json["results"]
    assert results[1]["error"]["code"] == "dispatch_refused"
    assert results[2]["error"]["field"] == "case_id"


def test_day_order_and_route_proposal(world, client, auth):
    headers = auth.headers("dispatcher")
    agent = world.users["agent2"]
    proposal = client.post(f"/api/v1/agents/{agent}/days/{TODAY}/route-proposal", headers=headers)
    assert proposal.status_code == 200
    body = proposal.json
    assert {o["id"] for o in body["order"]} == {world.visits["v3"], world.visits["v4"]}
    assert (
        body["total_distance_m"] == sum(s["leg_distance_m"] for s in body["stops"])
        or abs(body["total_distance_m"] - sum(s["leg_distance_m"] for s in body["stops"])) <= 2
    )
    assert all(s["arrival"] for s in body["stops"])
    reversed_order = list(reversed(body["order"]))
    applied = client.put(
        f"/api/v1/agents/{agent}/days/{TODAY}/order",
        headers=headers,
        json={"visits": reversed_order},
    )
    assert applied.status_code == 200
    assert [v["id"] for v in applied.json["visits"]] == [o["id"] for o in reversed_order]
    assert [v["route_order"] for v in applied.json["visits"]] == [1, 2]
    stale = client.put(
        f"/api/v1/agents/{agent}/days/{TODAY}/order",
        headers=headers,
        json={"visits": reversed_order},
    )
    assert stale.status_code == 409
    partial = client.put(
        f"/api/v1/agents/{agent}/days/{TODAY}/order",
        headers=headers,
        json={"visits": [{"id": world.visits["v3"], "version": 2}]},
    )
    assert partial.status_code == 422 and partial.json["error"]["field"] == "visits"
    day = client.get(f"/api/v1/me/day?date={TODAY}", headers=auth.headers("agent2")).json
    assert [v["id"] for v in day["visits"]] == [o["id"] for o in reversed_order]
    current = client.get(f"/api/v1/agents/{agent}/days/{TODAY}/route", headers=headers)
    assert [o["id"] for o in current.json["order"]] == [o["id"] for o in reversed_order]
