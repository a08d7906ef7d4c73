"""The privacy officer's reports: borrower disclosures (JSON, CSV, HTML), per-agent and
per-device history, the staff log as CSV, records of processing."""

import csv
import io
import json

import pytest

from server.clock import to_iso
from server.domain.disclosure import CATALOGUE, FACT_KINDS
from server.storage import ledger as ledger_rows
from server.storage.connection import transaction
from tests.conftest import TODAY

API = "/api/v1/audit"
REPORT_ENDPOINTS = (
    "/borrowers/{borrower}/disclosures",
    "/borrowers/{borrower}/disclosures?format=csv",
    "/borrowers/{borrower}/disclosures?format=html",
    "/agents/{agent}/history",
    "/devices/phone-agent1/history",
    "/anomalies",
    "/staff-actions.csv",
    "/records-of-processing",
    "/records-of-processing?format=html",
)


def borrower_of(db, world, case):
    return db.execute("SELECT borrower_id FROM cases WHERE id = ?", [world.cases[case]]).fetchone()[
        0
    ]


def pii_values(db, borrower_id):
    """Every personal value the store holds about the borrower, as it could appear in text."""
    row = next(db.query("SELECT * FROM borrowers WHERE id = ?", [borrower_id]))
    values = {row[c] for c in ("full_name", "national_id", "home_address", "work_address")}
    values.update(json.loads(row["phones"]))
    for contact in json.loads(row["contacts"]):
        values.update(contact.values())
    return {v for v in values if v}


def ledger_of(db, borrower_id):
    return list(
        db.query("SELECT * FROM exposure_ledger WHERE borrower_id = ? ORDER BY seq", [borrower_id])
    )


def relogin(auth, *users):
    """Access tokens live 15 minutes; after moving the clock, log in again."""
    for user in users:
        auth.sessions.pop(user, None)


@pytest.fixture
def scenario(world, client, auth, clock):
    """Serve a day, pull, plan, reassign v1 to agent2, pull again (purge ordered), view."""
    agent1 = auth.headers("agent1")
    assert client.get(f"/api/v1/me/day?date={TODAY}", headers=agent1).status_code == 200
    clock.advance(minutes=5)
    first = client.get("/api/v1/sync/pull", headers=agent1)
    assert first.status_code == 200 and len(first.json["upserts"]) == 2
    clock.advance(minutes=5)
    assert client.get("/api/v1/visits", headers=auth.headers("dispatcher")).status_code == 200
    clock.advance(minutes=5)
    moved = client.patch(
        f"/api/v1/visits/{world.visits['v1']}",
        json={"agent_id": world.users["agent2"]},
        headers={**auth.headers("dispatcher"), "If-Match": "1"},
    )
    assert moved.status_code == 200, moved.json
    clock.advance(minutes=5)
    relogin(auth, "agent1", "agent2", "dispatcher")
    second = client.get(
        f"/api/v1/sync/pull?cursor={first.json['cursor']}", headers=auth.headers("agent1")
    )
    assert [p["visit_id"] for p in second.json["purges"]] == [world.visits["v1"]]
    clock.advance(minutes=5)
    day2 = client.get(f"/api/v1/me/day?date={TODAY}", headers=auth.headers("agent2"))
    assert world.visits["v1"] in [v["id"] for v in day2.json["visits"]]
    return world


def report(client, auth, borrower_id, query=""):
    response = client.get(
        f"{API}/borrowers/{borrower_id}/disclosures{query}", headers=auth.headers("privacy")
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def ack_purge(client, auth, world, clock):
    clock.advance(minutes=5)
    ack = client.post(
        "/api/v1/sync/purge-acks",
        json={"visit_ids": [world.visits["v1"]]},
        headers=auth.headers("agent1"),
    )
    assert ack.json == {"confirmed": [world.visits["v1"]]}


def test_disclosure_report_lists_exactly_the_ledger_entries(scenario, client, auth, db, clock):
    world = scenario
    b1 = borrower_of(db, world, "C-0001")
    pending = report(client, auth, b1).json
    expected = ledger_of(db, b1)
    names = {world.users[n]: n for n in ("agent1", "agent2", "dispatcher")}
    # what the scenario did to borrower 1, in order, and nothing else (the reassignment's
    # answer carried the visit's notes back to the dispatcher)
    assert [(names[r["user_id"]], r["endpoint"]) for r in expected] == [
        ("agent1", "GET /api/v1/me/day"),
        ("agent1", "GET /api/v1/sync/pull"),
        ("dispatcher", "GET /api/v1/visits"),
        ("dispatcher", "PATCH /api/v1/visits/<int:visit_id>"),
        ("agent2", "GET /api/v1/me/day"),
    ]
    patched = expected[3]
    assert (json.loads(patched["fields"]), patched["purpose"], patched["visit_id"]) == (
        ["dispatcher_notes"],
        "dispatch_planning",
        world.visits["v1"],
    )
    assert [i["seq"] for i in pending["items"]] == [r["seq"] for r in expected]
    for item, row in zip(pending["items"], expected, strict=True):
        assert item["occurred_at"] == row["occurred_at"]
        assert (item["user_id"], item["role"], item["device_id"]) == (
            row["user_id"],
            row["role"],
            row["device_id"],
        )
        assert item["fields"] == json.loads(row["fields"])
        assert (item["purpose"], item["endpoint"], item["visit_id"]) == (
            row["purpose"],
            row["endpoint"],
            row["visit_id"],
        )
    assert {i["username"] for i in pending["items"]} == {names[r["user_id"]] for r in expected}
    by_recipient = {(i["username"], i["endpoint"]): i["purge_status"] for i in pending["items"]}
    assert by_recipient[("agent1", "GET /api/v1/sync/pull")] == "purge_pending"
    assert by_recipient[("agent2", "GET /api/v1/me/day")] == "not_tracked"
    assert by_recipient[("dispatcher", "GET /api/v1/visits")] is None
    assert {i["purpose"] for i in pending["items"]} == {"home_visit", "dispatch_planning"}

    ack_purge(client, auth, world, clock)
    done = report(client, auth, b1).json
    agent1_items = [i for i in done["items"] if i["username"] == "agent1"]
    assert {i["purge_status"] for i in agent1_items} == {"purged"}
    assert all(i["purge_confirmed_at"] and i["purge_ordered_at"] for i in agent1_items)
    assert agent1_items[0]["purge_reason"] == "reassigned"
    assert done["summary"] == {
        "entries": len(expected),
        "recipients": 3,
        "devices": 2,
        "first_at": expected[0]["occurred_at"],
        "last_at": expected[-1]["occurred_at"],
        "fields": sorted({f for r in expected for f in json.loads(r["fields"])}),
    }
    assert [r["username"] for r in done["recipients"]] == ["agent1", "dispatcher", "agent2"]
    assert done["controller"] == "the lender" and done["retention_days"] == 365
    assert done["next_after"] is None


def test_a_card_still_on_the_device_is_held(scenario, client, auth, db):
    b2 = borrower_of(db, scenario, "C-0002")
    items = report(client, auth, b2).json["items"]
    pulled = [i for i in items if i["endpoint"] == "GET /api/v1/sync/pull"]
    assert [i["purge_status"] for i in pulled] == ["held"]
    assert pulled[0]["purge_ordered_at"] is None


def test_report_period_pages_and_unknown_borrower(scenario, client, auth, db, clock):
    b1 = borrower_of(db, scenario, "C-0001")
    rows = ledger_of(db, b1)
    first = report(client, auth, b1, "?limit=2").json
    assert [i["seq"] for i in first["items"]] == [r["seq"] for r in rows[:2]]
    assert first["next_after"] == rows[1]["seq"]
    rest = report(client, auth, b1, f"?after={first['next_after']}").json
    assert [i["seq"] for i in rest["items"]] == [r["seq"] for r in rows[2:]]
    assert rest["summary"]["entries"] == len(rows)  # the summary covers the whole period

    since = rows[2]["occurred_at"]
    window = report(client, auth, b1, f"?since={since}").json
    assert [i["seq"] for i in window["items"]] == [r["seq"] for r in rows[2:]]
    # default period: the retention period back from now
    clock.advance(days=366)
    relogin(auth, "privacy")
    assert report(client, auth, b1).json["items"] == []

    privacy = auth.headers("privacy")
    missing = client.get(f"{API}/borrowers/999999/disclosures", headers=privacy)
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    backwards = client.get(
        f"{API}/borrowers/{b1}/disclosures?since=2026-11-25T00:00:00Z&until=2026-11-24T00:00:00Z",
        headers=privacy,
    )
    assert backwards.status_code == 422
    typo = client.get(f"{API}/borrowers/{b1}/disclosures?formt=csv", headers=privacy)
    assert typo.status_code == 422


def test_csv_matches_the_report_and_carries_no_pii(scenario, client, auth, db):
    b1 = borrower_of(db, scenario, "C-0001")
    response = report(client, auth, b1, "?format=csv")
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="disclosures-borrower-{b1}.csv"'
    )
    text = response.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    expected = ledger_of(db, b1)
    assert [int(r["seq"]) for r in rows] == [r["seq"] for r in expected]
    assert [r["fields"].split(";") for r in rows] == [json.loads(r["fields"]) for r in expected]
    assert {r["purge_status"] for r in rows} == {"purge_pending", "not_tracked", ""}
    for value in pii_values(db, b1):
        assert value not in text


def test_html_page_is_self_contained_escaped_and_free_of_pii(scenario, client, auth, db, clock):
    b1 = borrower_of(db, scenario, "C-0001")
    with transaction(db):
        ledger_rows.append(
            db,
            [
                {
                    "occurred_at": to_iso(clock.now),
                    "user_id": scenario.users["dispatcher"],
                    "role": "dispatcher",
                    "device_id": None,
                    "borrower_id": b1,
                    "case_id": scenario.cases["C-0001"],
                    "visit_id": None,
                    "fields": json.dumps(["display_name"]),
                    "purpose": "<script>alert(1)</script>",
                    "endpoint": "GET /api/v1/cases",
                    "request_id": "req-html-escape",
                    "outcome": "served",
                }
            ],
        )
    response = report(client, auth, b1, "?format=html")
    assert response.mimetype == "text/html"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    page = response.get_data(as_text=True)
    assert "<script" not in page.lower() and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "http://" not in page and "https://" not in page  # no remote resources
    for row in ledger_of(db, b1):
        assert f">{row['seq']}<" in page
    assert "purge pending" in page and "not tracked" in page
    for value in pii_values(db, b1):
        assert value not in page


def test_agent_history_groups_by_local_day_with_the_visits_in_force(scenario, client, auth, db):
    world = scenario
    agent1 = world.users["agent1"]
    response = client.get(f"{API}/agents/{agent1}/history", headers=auth.headers("privacy"))
    assert response.status_code == 200, response.json
    history = response.json
    assert history["user_id"] == agent1 and history["time_zone"] == "Asia/Shanghai"
    expected = list(
        db.query("SELECT * FROM exposure_ledger WHERE user_id = ? ORDER BY seq", [agent1])
    )
    assert [d["date"] for d in history["days"]] == [TODAY]
    entries = history["days"][0]["entries"]
    assert [e["seq"] for e in entries] == [r["seq"] for r in expected]
    assert {e["borrower_id"] for e in entries} == {
        borrower_of(db, world, "C-0001"),
        borrower_of(db, world, "C-0002"),
    }
    visits = {v["visit_id"]: v for v in history["days"][0]["visits"]}
    assert set(visits) == {world.visits["v1"], world.visits["v2"]}
    v1 = visits[world.visits["v1"]]
    # served before the reassignment: version 1, assigned to agent1 at that moment
    assert (v1["version"], v1["assigned_agent_id"], v1["assigned_to_recipient"]) == (
        1,
        agent1,
        True,
    )
    assert (v1["visit_date"], v1["status"], v1["case_id"]) == (
        TODAY,
        "planned",
        world.cases["C-0001"],
    )
    body = response.get_data(as_text=True)
    for case in ("C-0001", "C-0002"):
        for value in pii_values(db, borrower_of(db, world, case)):
            assert value not in body


def test_agent2_history_shows_the_visit_version_after_reassignment(scenario, client, auth):
    world = scenario
    agent2 = world.users["agent2"]
    history = client.get(f"{API}/agents/{agent2}/history", headers=auth.headers("privacy")).json
    visits = {v["visit_id"]: v for v in history["days"][0]["visits"]}
    v1 = visits[world.visits["v1"]]
    assert (v1["version"], v1["assigned_agent_id"], v1["assigned_to_recipient"]) == (
        2,
        agent2,
        True,
    )


def test_device_history_and_days_split_at_local_midnight(world, client, auth, db, clock):
    headers = auth.headers("agent1")
    client.get("/api/v1/sync/pull", headers=headers)
    privacy = auth.headers("privacy")
    device = client.get(f"{API}/devices/phone-agent1/history", headers=privacy).json
    expected = list(
        db.query("SELECT seq FROM exposure_ledger WHERE device_id = 'phone-agent1' ORDER BY seq")
    )
    assert device["device_id"] == "phone-agent1" and device["user_id"] is None
    assert [e["seq"] for d in device["days"] for e in d["entries"]] == [r["seq"] for r in expected]

    # 20:00 UTC is 04:00 the next day in Shanghai: the dispatcher's second look is a new day
    client.get("/api/v1/visits", headers=auth.headers("dispatcher"))
    clock.advance(hours=18)
    relogin(auth, "dispatcher", "privacy")
    later = client.get(f"/api/v1/visits?visit_date={TODAY}", headers=auth.headers("dispatcher"))
    assert later.status_code == 200
    dispatcher = world.users["dispatcher"]
    history = client.get(f"{API}/agents/{dispatcher}/history", headers=auth.headers("privacy")).json
    assert [d["date"] for d in history["days"]] == [TODAY, "2026-11-25"]
    assert all(e["purpose"] == "dispatch_planning" for d in history["days"] for e in d["entries"])
    paged = client.get(
        f"{API}/agents/{dispatcher}/history?limit=1", headers=auth.headers("privacy")
    ).json
    assert len(paged["days"][0]["entries"]) == 1 and paged["next_after"] is not None

    missing = client.get(f"{API}/devices/no-such-device/history", headers=auth.headers("privacy"))
    assert missing.status_code == 404
    assert (
        client.get(f"{API}/agents/999999/history", headers=auth.headers("privacy")).status_code
        == 404
    )


def test_staff_actions_csv_matches_the_json_log(world, client, auth, db):
    privacy = auth.headers("privacy")
    client.post("/api/v1/auth/login", json={"username": "=HYPERLINK(1)", "password": "x"})
    page = client.get(f"{API}/staff-actions?limit=1000", headers=privacy).json
    response = client.get(f"{API}/staff-actions.csv?limit=1000", headers=privacy)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "staff-actions.csv" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [int(r["id"]) for r in rows] == [i["id"] for i in page["items"]]
    assert [r["action"] for r in rows] == [i["action"] for i in page["items"]]
    failed = [r for r in rows if r["action"] == "login_failed"]
    # a spreadsheet must not run an attacker-chosen username as a formula
    assert failed[-1]["username"] == "'=HYPERLINK(1)"

    text = response.get_data(as_text=True)
    for borrower in db.query("SELECT id FROM borrowers"):
        for value in pii_values(db, borrower["id"]):
            assert value not in text

    only = client.get(f"{API}/staff-actions.csv?action=login_failed&limit=1", headers=privacy)
    rows = list(csv.DictReader(io.StringIO(only.get_data(as_text=True))))
    assert [r["action"] for r in rows] == ["login_failed"]
    assert only.headers["X-Next-After"] == rows[0]["id"]


def test_records_of_processing_follow_the_configuration(make_app, world, auth):
    configured = make_app(CONTROLLER_NAME="Acme <Lending>", PERSONAL_DATA_RETENTION_DAYS=90)
    rt, client = configured.extensions["doorstep"], configured.test_client()
    for user in ("privacy", "admin"):
        response = client.get(f"{API}/records-of-processing", headers=auth.headers(user))
        assert response.status_code == 200
    record = response.json
    assert record["controller"] == "Acme <Lending>"
    assert [p["name"] for p in record["purposes"]] == [
        "home_visit",
        "dispatch_planning",
        "compliance_evidence",
        "visit_register",
        "audit",
        "legal_escalation",
    ]
    # card fields and the facts of field records and routes
    assert record["disclosable_fields"] == sorted(FACT_KINDS)
    assert set(CATALOGUE) < set(FACT_KINDS) and "visit_notes" in FACT_KINDS
    assert {r["role"]: r["fields_by_purpose"] for r in record["recipients"]} == (
        rt.disclosure.as_dict()
    )
    assert {r["kind"]: r["days"] for r in record["retention"]} == {
        "exposure_ledger": 365,
        "compliance_evidence": 1095,
        "borrower_personal_data": 90,
        "attachments": 1095,
        "contact_log": 1095,
        "payments_and_promises": 1095,
        "free_text_notes": 90,
    }
    assert record["compliance_profile"] == json.loads(json.dumps(rt.compliance.to_dict()))
    borrowers = record["data_subjects"][0]
    assert {"full_name", "national_id", "phones"} <= set(borrowers["data"])
    assert any("Argon2id" in m for m in record["security_measures"])

    page = client.get(f"{API}/records-of-processing?format=html", headers=auth.headers("admin"))
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "Acme &lt;Lending&gt;" in html and "<script" not in html.lower()
    assert "90 days" in html and "home_address" in html


@pytest.mark.parametrize("path", REPORT_ENDPOINTS)
def test_agents_dispatchers_and_admins_are_refused(world, client, auth, db, path):
    url = API + path.format(borrower=borrower_of(db, world, "C-0001"), agent=world.users["agent1"])
    # Admins read the staff log (as JSON or CSV) and the records of processing; never PII.
    admin_may = "records-of-processing" in path or "staff-actions" in path
    refused = ("agent1", "dispatcher") + (() if admin_may else ("admin",))
    for user in refused:
        response = client.get(url, headers=auth.headers(user))
        assert response.status_code == 403, (user, path)
        assert response.json["error"]["code"] == "forbidden"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=auth.headers("privacy")).status_code == 200
