"""What happens at the door changes the plan: reports complete or attempt their visits, the
day close marks the rest missed (once), and dispatchers get a re-plan list."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from sync.visits import VISIT_OUTCOMES
from tests.api.lifecycle_steps import (
    API,
    change_case,
    dispatcher_visit,
    plan_visit,
    push,
    report,
)
from tests.conftest import T0

EXPECTED_STATUS = {
    "met_borrower": "completed",
    "promise_to_pay": "completed",
    "agreement_signed": "completed",
    "refused": "completed",
    "not_home": "attempted",
    "address_not_found": "attempted",
    "moved": "attempted",
    "third_party_met": "attempted",
    "other": "attempted",
}
# Midnight in Shanghai after the world's day, and a minute past.
AFTER_THE_DAY = dict(hours=14, minutes=1)


def test_every_outcome_has_an_expected_status():
    assert set(EXPECTED_STATUS) == set(VISIT_OUTCOMES)


@pytest.mark.parametrize("outcome", sorted(EXPECTED_STATUS))
def test_a_stored_report_moves_its_visit_on(world, client, auth, db, outcome):
    v1 = world.visits["v1"]
    before = dispatcher_visit(client, auth, v1)
    push(client, auth, "agent1", [report(v1, outcome)])
    after = dispatcher_visit(client, auth, v1)
    assert after["status"] == EXPECTED_STATUS[outcome]
    assert (after["last_outcome"], after["attempts"]) == (outcome, 1)
    assert after["last_attempt_at"] == "2026-11-24T01:30:00.000000Z"
    assert after["version"] == before["version"] + 1
    history = db.execute(
        "SELECT status FROM visit_history WHERE visit_id = ? ORDER BY version DESC LIMIT 1", [v1]
    ).fetchone()
    assert history == (EXPECTED_STATUS[outcome],)


def test_reports_in_any_order_keep_the_latest_outcome_and_count_attempts(world, client, auth):
    v1 = world.visits["v1"]
    later = report(v1, "promise_to_pay", T0 - timedelta(minutes=20), promise_amount="100.00")
    earlier = report(v1, "not_home", T0 - timedelta(hours=2))
    push(client, auth, "agent1", [later])
    push(client, auth, "agent1", [earlier])  # synced second, happened first
    push(client, auth, "agent1", [earlier, later])  # a replay counts nothing
    visit = dispatcher_visit(client, auth, v1)
    assert (visit["status"], visit["last_outcome"], visit["attempts"]) == (
        "completed",
        "promise_to_pay",
        2,
    )


def test_a_second_try_completes_an_attempted_visit(world, client, auth):
    v1 = world.visits["v1"]
    push(client, auth, "agent1", [report(v1, "not_home", T0 - timedelta(hours=2))])
    assert dispatcher_visit(client, auth, v1)["status"] == "attempted"
    push(client, auth, "agent1", [report(v1, "agreement_signed", T0 - timedelta(minutes=10))])
    visit = dispatcher_visit(client, auth, v1)
    assert (visit["status"], visit["attempts"]) == ("completed", 2)


def test_a_report_for_a_cancelled_visit_keeps_it_cancelled_and_is_flagged(world, client, auth):
    v2 = world.visits["v2"]
    version = dispatcher_visit(client, auth, v2)["version"]
    cancelled = client.post(
        f"{API}/visits/{v2}/cancel",
        json={"version": version, "reason": "rescheduled"},
        headers=auth.headers("dispatcher"),
    )
    assert cancelled.status_code == 200
    (outcome,) = push(client, auth, "agent1", [report(v2, "met_borrower")])
    assert outcome["status"] == "flagged"
    assert "visit_cancelled" in {f["code"] for f in outcome["flags"]}
    visit = dispatcher_visit(client, auth, v2)
    assert visit["status"] == "cancelled"
    assert "visit_cancelled" in visit["flags"]


def test_dispatcher_views_show_outcome_attempts_and_flags_and_ledger_them(world, client, auth, db):
    v1 = world.visits["v1"]
    # Far from the home: the report is flagged location_mismatch.
    far = report(v1, "not_home", location={"lat": 31.5, "lon": 121.9, "accuracy_m": 10})
    push(client, auth, "agent1", [far])
    page = client.get(
        f"{API}/visits?agent_id={world.users['agent1']}", headers=auth.headers("dispatcher")
    )
    item = next(v for v in page.json["items"] if v["id"] == v1)
    assert (item["status"], item["last_outcome"], item["attempts"]) == ("attempted", "not_home", 1)
    assert "location_mismatch" in item["flags"]
    untouched = next(v for v in page.json["items"] if v["id"] == world.visits["v2"])
    assert (untouched["last_outcome"], untouched["attempts"], untouched["flags"]) == (None, 0, [])
    fields = db.execute(
        "SELECT fields FROM exposure_ledger WHERE visit_id = ? AND role = 'dispatcher' "
        "ORDER BY seq DESC LIMIT 1",
        [v1],
    ).fetchone()[0]
    assert {"visit_outcome", "flag_details", "display_name"} <= set(json.loads(fields))
    # The agent's own view of its visit has no such fields.
    mine = client.get(f"{API}/visits/{v1}", headers=auth.headers("agent1")).json
    assert "last_outcome" not in mine and "flags" not in mine


def _relogin(auth, *users):
    for user in users:
        auth.login(user, f"phone-{user}" if user.startswith("agent") else None)


def test_the_first_request_after_the_day_ends_marks_the_rest_missed(world, client, auth, db):
    v1 = world.visits["v1"]
    push(client, auth, "agent1", [report(v1, "met_borrower")])
    world.clock.advance(hours=13, minutes=59)  # 23:59 in Shanghai: the day is not over
    assert client.get(f"{API}/health").status_code == 200
    assert db.execute("SELECT count(*) FROM visits WHERE status = 'missed'").fetchone()[0] == 0
    world.clock.advance(minutes=2)
    assert client.get(f"{API}/health").status_code == 200
    statuses = dict(db.execute("SELECT id, status FROM visits").fetchall())
    assert statuses[v1] == "completed"
    missed = sorted(world.visits[k] for k in ("v2", "v3", "v4"))
    assert sorted(v for v, s in statuses.items() if s == "missed") == missed
    # Once: more requests and the command change nothing, and the history says it once.
    assert client.get(f"{API}/health").status_code == 200
    result = world.app.test_cli_runner().invoke(args=["close-day"])
    assert result.exit_code == 0, result.output
    assert "0 visit(s) marked missed" in result.output
    rows = db.execute(
        "SELECT visit_id, count(*) FROM visit_history WHERE status = 'missed' GROUP BY visit_id"
    ).fetchall()
    assert rows == [(v, 1) for v in missed]
    logged = db.execute("SELECT details FROM staff_audit WHERE action = 'days_closed'").fetchall()
    assert len(logged) == 1 and '"missed": 3' in logged[0][0]


def test_close_day_command_for_one_day_only_once_it_has_ended(world, client, auth, db):
    tomorrow = plan_visit(
        client, auth, world.cases["C-0002"], world.users["agent1"], "2026-11-25"
    ).json["visit"]["id"]
    runner = world.app.test_cli_runner()
    early = runner.invoke(args=["close-day", "--day", "2026-11-24"])
    assert "day 2026-11-24: 0 visit(s) marked missed" in early.output
    world.clock.advance(**AFTER_THE_DAY)
    ended = runner.invoke(args=["close-day", "--day", "2026-11-24"])
    assert ended.exit_code == 0 and "4 visit(s) marked missed" in ended.output
    again = runner.invoke(args=["close-day", "--day", "2026-11-24"])
    assert "0 visit(s) marked missed" in again.output
    not_yet = runner.invoke(args=["close-day", "--day", "2026-11-25"])
    assert "0 visit(s) marked missed" in not_yet.output
    status = db.execute("SELECT status FROM visits WHERE id = ?", [tomorrow]).fetchone()[0]
    assert status == "planned"


def test_a_late_report_turns_a_missed_visit_into_an_attempt(world, client, auth):
    v1 = world.visits["v1"]
    world.clock.advance(**AFTER_THE_DAY)
    _relogin(auth, "agent1", "dispatcher")
    assert dispatcher_visit(client, auth, v1)["status"] == "missed"
    # Recorded at the door yesterday, synced only now.
    push(client, auth, "agent1", [report(v1, "moved")], now=world.clock.now)
    visit = dispatcher_visit(client, auth, v1)
    assert (visit["status"], visit["last_outcome"]) == ("attempted", "moved")


def test_replan_lists_attempted_and_missed_visits_still_to_plan(world, client, auth, db):
    v1, v2, v3, v4 = (world.visits[k] for k in ("v1", "v2", "v3", "v4"))
    push(client, auth, "agent1", [report(v1, "not_home"), report(v2, "agreement_signed")])
    world.clock.advance(**AFTER_THE_DAY)
    _relogin(auth, "agent1", "dispatcher")
    dispatcher = auth.headers("dispatcher")

    listed = client.get(f"{API}/visits/replan", headers=dispatcher)
    assert listed.status_code == 200, listed.json
    items = {v["id"]: v for v in listed.json["items"]}
    assert sorted(items) == sorted([v1, v3, v4])
    assert (items[v1]["status"], items[v1]["last_outcome"], items[v1]["attempts"]) == (
        "attempted",
        "not_home",
        1,
    )
    assert (items[v3]["status"], items[v3]["attempts"]) == ("missed", 0)
    assert items[v3]["borrower"]["display_name"] == "Borrower 3"

    # Planned again for the next day: off the list. A case closed since: off the list.
    again = plan_visit(client, auth, world.cases["C-0003"], world.users["agent2"], "2026-11-26")
    assert again.status_code == 201, again.json
    closed = change_case(client, auth, world.cases["C-0004"], status="closed_settled")
    assert closed.status_code == 200, closed.json
    one_agent = client.get(
        f"{API}/visits/replan", query_string={"agent_id": world.users["agent1"]}, headers=dispatcher
    )
    assert [v["id"] for v in one_agent.json["items"]] == [v1]
    remaining = client.get(f"{API}/visits/replan", headers=dispatcher).json["items"]
    assert [v["id"] for v in remaining] == [v1]
    # Only the days asked for.
    older = client.get(
        f"{API}/visits/replan",
        query_string={"since": "2026-11-01", "until": "2026-11-23"},
        headers=dispatcher,
    )
    assert older.json["items"] == []
    bad = client.get(
        f"{API}/visits/replan",
        query_string={"since": "2026-11-25", "until": "2026-11-23"},
        headers=dispatcher,
    )
    assert bad.status_code == 422


def test_an_attempted_visit_may_be_tried_again_by_another_agent(world, client, auth):
    v1 = world.visits["v1"]
    push(client, auth, "agent1", [report(v1, "not_home")])
    visit = dispatcher_visit(client, auth, v1)
    moved = client.patch(
        f"{API}/visits/{v1}",
        json={"agent_id": world.users["agent2"], "version": visit["version"]},
        headers=auth.headers("dispatcher"),
    )
    assert moved.status_code == 200, moved.json
    push(client, auth, "agent1", [report(world.visits["v2"], "met_borrower")])
    done = dispatcher_visit(client, auth, world.visits["v2"])
    refused = client.patch(
        f"{API}/visits/{done['id']}",
        json={"window_start": "15:00", "version": done["version"]},
        headers=auth.headers("dispatcher"),
    )
    assert refused.status_code == 409
    assert refused.json["error"]["message"] == "a completed visit cannot be changed"
