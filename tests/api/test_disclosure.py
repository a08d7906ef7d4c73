"""What agents and dispatchers see of a borrower, and what the ledger writes about it."""

import json

import pytest

from schemas.visits import AgentVisitSchema, BorrowerCardSchema
from server.domain.disclosure import CATALOGUE, DEFAULT_POLICY
from tests.conftest import TODAY

STRUCTURAL = {"borrower_id", "case_id", "expires_at"}


def _secrets(db):
    """Every national ID, full phone and contact value held in the store."""
    values = set()
    for row in db.query(
        "SELECT national_id, phones, contacts, date_of_birth, income FROM borrowers"
    ):
        values.add(row["national_id"])
        values.update(json.loads(row["phones"]))
        for contact in json.loads(row["contacts"]):
            values.update(v for v in contact.values())
    return {v for v in values if v}


def _ledger(db):
    return list(db.query("SELECT * FROM exposure_ledger ORDER BY seq"))


def test_agent_day_cards_carry_only_the_policy_fields(world, client, auth, db):
    response = client.get(f"/api/v1/me/day?date={TODAY}", headers=auth.headers("agent1"))
    assert response.status_code == 200
    allowed = set(DEFAULT_POLICY["agent"]["home_visit"]) | STRUCTURAL
    visits = response.json["visits"]
    assert len(visits) == 2
    for visit in visits:
        card = visit["borrower"]
        assert set(card) == allowed
        assert "notes" not in visit  # agents get notes only through the card
        assert card["phone_masked"][0].count("*") == 4
        assert card["expires_at"] == "2026-11-24T22:00:00+00:00"  # end of day + 6 h, UTC
    body = response.get_data(as_text=True)
    for secret in _secrets(db):
        assert secret not in body


def test_each_card_served_writes_one_ledger_entry_with_its_fields(world, client, auth, db):
    before = len(_ledger(db))
    response = client.get(f"/api/v1/me/day?date={TODAY}", headers=auth.headers("agent1"))
    entries = _ledger(db)[before:]
    assert len(entries) == 2
    request_id = response.headers["X-Request-Id"]
    for entry, visit in zip(entries, response.json["visits"], strict=True):
        card = visit["borrower"]
        assert entry["borrower_id"] == card["borrower_id"]
        assert entry["case_id"] == card["case_id"]
        assert entry["visit_id"] == visit["id"]
        assert entry["user_id"] == world.users["agent1"]
        assert entry["role"] == "agent"
        assert entry["device_id"] == "phone-agent1"
        assert entry["request_id"] == request_id
        assert entry["endpoint"] == "GET /api/v1/me/day"
        assert json.loads(entry["fields"]) == sorted(set(card) - STRUCTURAL)


def test_dispatcher_view_is_minimized_and_logged(world, client, auth, db):
    before = len(_ledger(db))
    response = client.get(f"/api/v1/visits?visit_date={TODAY}", headers=auth.headers("dispatcher"))
    assert response.status_code == 200
    items = response.json["items"]
    assert len(items) == 4
    allowed = set(DEFAULT_POLICY["dispatcher"]["*"]) | {"borrower_id", "case_id"}
    for item in items:
        assert set(item["borrower"]) <= allowed
    body = response.get_data(as_text=True)
    for secret in _secrets(db):
        assert secret not in body
    entries = _ledger(db)[before:]
    assert len(entries) == 4
    assert {e["purpose"] for e in entries} == {"dispatch_planning"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/visits/{v3}",
        "/api/v1/cases/{c3}",
        "/api/v1/borrowers/{b3}",
        "/api/v1/visits/999999",
    ],
)
def test_agent_gets_404_for_what_is_not_assigned_to_it(world, client, auth, db, path):
    case3 = world.cases["C-0003"]
    borrower3 = next(db.query("SELECT borrower_id FROM cases WHERE id = ?", [case3]))["borrower_id"]
    before = len(_ledger(db))
    url = path.format(v3=world.visits["v3"], c3=case3, b3=borrower3)
    response = client.get(url, headers=auth.headers("agent1"))
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    assert len(_ledger(db)) == before  # nothing served, nothing logged


def test_agent_reads_own_visit_case_and_borrower(world, client, auth, db):
    headers = auth.headers("agent1")
    visit = client.get(f"/api/v1/visits/{world.visits['v1']}", headers=headers)
    assert visit.status_code == 200
    case_id = visit.json["case_id"]
    borrower_id = visit.json["borrower"]["borrower_id"]
    assert client.get(f"/api/v1/cases/{case_id}", headers=headers).status_code == 200
    card = client.get(f"/api/v1/borrowers/{borrower_id}", headers=headers)
    assert card.status_code == 200
    assert "display_name" in card.json and "national_id" not in card.json


PLANNING_ONLY = {"notes", "notice_note", "cancel_reason", "created_at"}


def test_an_agents_visit_is_an_allow_list_of_its_own(world, client, auth, db):
    db.execute(
        "UPDATE visits SET notice_note = 'told the sister', cancel_reason = 'n/a' WHERE id = ?",
        [world.visits["v1"]],
    )
    mine = client.get(f"/api/v1/visits/{world.visits['v1']}", headers=auth.headers("agent1"))
    assert mine.status_code == 200
    assert set(mine.json) <= set(AgentVisitSchema().fields)
    assert not PLANNING_ONLY & set(mine.json)
    assert "told the sister" not in mine.text and "n/a" not in mine.text
    # The dispatcher's notes reach the agent only through the card, as the policy allows.
    assert mine.json["borrower"]["dispatcher_notes"] == "notes for v1"
    planning = client.get(
        f"/api/v1/visits/{world.visits['v1']}", headers=auth.headers("dispatcher")
    )
    assert planning.json["notes"] == "notes for v1"
    assert planning.json["notice_note"] == "told the sister"


def test_every_catalogue_field_has_a_place_in_the_card_schema():
    """A field the policy may disclose but the card schema lacks would be logged in the
    ledger as disclosed yet dropped from the response; one the schema has but the catalogue
    lacks could never be served. The two lists must be the same."""
    assert set(CATALOGUE) == set(BorrowerCardSchema().fields) - STRUCTURAL


def test_the_agent_schema_drops_whatever_the_service_adds():
    """The allow-list holds even if a service hands the view more than it should."""
    leaky = {"id": 1, "notes": "x", "notice_note": "y", "cancel_reason": "z", "created_at": "t"}
    assert AgentVisitSchema().dump(leaky) == {"id": 1}


def test_cards_disappear_after_the_grace_period(world, client, auth, clock):
    url = f"/api/v1/visits/{world.visits['v1']}"

    def fresh_headers():
        auth.sessions.pop("agent1", None)  # access tokens live 15 minutes: log in again
        return auth.headers("agent1")

    clock.advance(hours=19, minutes=59)  # 21:59 UTC = 05:59 next day in Shanghai
    assert client.get(url, headers=fresh_headers()).status_code == 200
    clock.advance(minutes=2)
    headers = fresh_headers()
    assert client.get(url, headers=headers).status_code == 404
    day = client.get(f"/api/v1/me/day?date={TODAY}", headers=headers)
    assert day.status_code == 200
    assert [v["borrower"] for v in day.json["visits"]] == [None, None]


def test_cancelled_or_reassigned_visit_is_gone_for_the_agent(world, client, auth):
    dispatcher = auth.headers("dispatcher")
    v1, v2 = world.visits["v1"], world.visits["v2"]
    assert (
        client.post(
            f"/api/v1/visits/{v1}/cancel", json={"version": 1}, headers=dispatcher
        ).status_code
        == 200
    )
    response = client.patch(
        f"/api/v1/visits/{v2}",
        json={"agent_id": world.users["agent2"]},
        headers={**dispatcher, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.json
    agent1 = auth.headers("agent1")
    for visit_id in (v1, v2):
        assert client.get(f"/api/v1/visits/{visit_id}", headers=agent1).status_code == 404
    assert client.get(f"/api/v1/me/day?date={TODAY}", headers=agent1).json["visits"] == []
    agent2 = auth.headers("agent2")
    assert client.get(f"/api/v1/visits/{v2}", headers=agent2).status_code == 200


def test_policy_file_changes_what_is_served(tmp_path, clock):
    from server import create_app
    from tests.conftest import Auth

    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"agent": {"home_visit": ["display_name", "overdue_amount"]}}))
    app = create_app(
        {
            "DATABASE": str(tmp_path / "p.db"),
            "CLOCK": clock,
            "DISCLOSURE_POLICY_FILE": str(policy),
            "PASSWORD_TIME_COST": 1,
            "PASSWORD_MEMORY_COST_KIB": 1024,
        }
    )
    policy_view = app.extensions["doorstep"].disclosure
    assert policy_view.allowed_fields("agent", "home_visit") == ("display_name", "overdue_amount")
    assert "home_address" in policy_view.allowed_fields("dispatcher", "home_visit")
    assert Auth  # the full HTTP path is covered with the default policy above


@pytest.mark.parametrize(
    "bad",
    [
        {"agent": {"home_visit": ["national_id"]}},
        {"dispatcher": {"*": ["phones"]}},
        {"agent": {"home_visit": ["contacts"]}},
        {"auditor": {"*": ["display_name"]}},
        {"agent": {"picnic": ["display_name"]}},
        # a card is built from card fields only; field facts belong to staff purposes
        {"agent": {"home_visit": ["visit_notes"]}},
        {"dispatcher": {"compliance_evidence": ["national_id"]}},
    ],
)
def test_policy_that_names_undisclosable_data_is_refused(bad):
    from server.domain.disclosure import PolicyError, build_policy

    with pytest.raises(PolicyError):
        build_policy(bad)


def test_staff_purposes_list_field_facts_and_fall_back_to_nothing():
    from server.domain.disclosure import build_policy

    policy = build_policy({"dispatcher": {"compliance_evidence": ["visit_outcome", "gps_fix"]}})
    assert policy.allowed_fields("dispatcher", "compliance_evidence") == (
        "visit_outcome",
        "gps_fix",
    )
    assert "route_leg_distance" in policy.allowed_fields("dispatcher", "dispatch_planning")
    # agents read the outcome of their own records, and no planning data
    assert set(policy.allowed_fields("agent", "compliance_evidence")) == {
        "id_result",
        "flag_details",
    }
    assert policy.allowed_fields("agent", "dispatch_planning") == ()
    assert policy.allowed_fields("privacy_officer", "compliance_evidence") == ()
