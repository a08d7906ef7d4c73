"""The typed-ID check: a budget per borrower per period, "limit reached" when it is spent, and
no comparison at all for a visit whose card the agent may not hold."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from tests.api.test_agent_answers import reviewer_records
from tests.conftest import T0, TODAY


def iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def national_id(db, case_id: int) -> str:
    return db.execute(
        "SELECT b.national_id FROM borrowers b JOIN cases c ON c.borrower_id = b.id WHERE c.id = ?",
        [case_id],
    ).fetchone()[0]


def id_check(visit_id: int, typed: str, at=T0) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "kind": "id_confirmation",
        "visit_id": visit_id,
        "device_seq": 1,
        "recorded_at": iso(at),
        "body": {"confirmation_kind": "borrower_identity", "id_last6": typed},
    }


def push_checks(client, headers, records: list[dict], now=T0) -> list[dict]:
    response = client.post(
        "/api/v1/sync/push", json={"device_time": iso(now), "records": records}, headers=headers
    )
    assert response.status_code == 200, response.json
    return response.json["outcomes"]


def new_visit(client, auth, case_id: int, agent_id: int, day: str = TODAY) -> int:
    response = client.post(
        "/api/v1/visits",
        json={
            "case_id": case_id,
            "agent_id": agent_id,
            "visit_date": day,
            "purpose": "follow_up",
            "notice": {"kind": "appointment"},
        },
        headers=auth.headers("dispatcher"),
    )
    assert response.status_code == 201, response.json
    return response.json["visit"]["id"]


def test_a_new_visit_does_not_reset_the_borrowers_id_check_budget(make_app, auth, world, db, clock):
    """A third check on a second visit to the same case used to be compared again (the
    budget was per visit) and, past the budget, answered "unverifiable" as if no number were
    on file; now the budget is the borrower's and the answer says the limit is reached."""
    client = make_app(ID_CHECKS_PER_BORROWER=2, ID_CHECK_PERIOD_DAYS=30).test_client()
    case = world.cases["C-0001"]
    right = national_id(db, case)[-6:]
    agent = auth.headers("agent1")
    first = push_checks(
        client, agent, [id_check(world.visits["v1"], right), id_check(world.visits["v1"], "ZZZZZZ")]
    )
    assert [o["id_verification"] for o in first] == ["match", "mismatch"]

    again = new_visit(client, auth, case, world.users["agent1"])
    (spent,) = push_checks(client, agent, [id_check(again, right)])
    assert spent["id_verification"] == "limit_reached"
    assert spent["status"] == "flagged"
    assert spent["flags"] == [
        {
            "code": "id_check_limit_reached",
            "message": "The limit of ID checks for this borrower was reached: not compared.",
            "details": {},
        }
    ]
    assert reviewer_records(client, auth, again)[spent["record_id"]]["id_verification"] == (
        "limit_reached"
    )

    # A month on, the borrower's budget is whole again.
    clock.advance(days=31)
    auth.sessions.clear()
    later_day = (date.fromisoformat(TODAY) + timedelta(days=31)).isoformat()
    later = new_visit(client, auth, case, world.users["agent1"], later_day)
    (fresh,) = push_checks(client, auth.headers("agent1"), [id_check(later, right, clock.now)])
    assert fresh["id_verification"] == "match"


def test_an_id_check_for_a_visit_whose_card_is_not_held_is_not_compared(make_app, auth, world, db):
    """A check for tomorrow's visit (card not yet held) used to be compared and spend the
    budget; now it is stored unanswered, flagged id_not_compared, and spends nothing."""
    client = make_app(ID_CHECKS_PER_BORROWER=1).test_client()
    case = world.cases["C-0001"]
    right = national_id(db, case)[-6:]
    agent = auth.headers("agent1")
    tomorrow = (date.fromisoformat(TODAY) + timedelta(days=1)).isoformat()
    ahead = new_visit(client, auth, case, world.users["agent1"], tomorrow)

    (early,) = push_checks(client, agent, [id_check(ahead, right)])
    assert early["id_verification"] is None
    assert "id_not_compared" not in {f["code"] for f in early["flags"]}  # not the agent's yet
    stored = reviewer_records(client, auth, ahead)[early["record_id"]]
    assert stored["id_verification"] == "not_compared"

    # The budget of one is still there for today's visit, whose card the agent holds.
    (today,) = push_checks(client, agent, [id_check(world.visits["v1"], right)])
    assert today["id_verification"] == "match"
