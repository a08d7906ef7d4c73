"""Flags on contacts that staff logged or imported are review items like a field record's:
listed, assigned, resolved, ledgered; a phone's synced contact is one item, not two."""

from __future__ import annotations

import json
from datetime import timedelta

from tests.api.test_contact_compliance import seven_calls
from tests.api.test_contacts import call, contact_record, import_rows, iso, log
from tests.api.test_sync import push
from tests.conftest import T0

API = "/api/v1"
FREQUENCY = "call_frequency_exceeded"


def _flags(client, auth, **query):
    answer = client.get(f"{API}/flags", query_string=query, headers=auth.headers("dispatcher"))
    assert answer.status_code == 200, answer.json
    return answer.json


def _borrower_of_case(db, case_id: int) -> int:
    return db.execute("SELECT borrower_id FROM cases WHERE id = ?", [case_id]).fetchone()[0]


def test_a_logged_call_that_breaks_a_rule_is_a_review_item(client, auth, world, db):
    case_id = world.cases["C-0002"]
    seven_calls(client, auth, case_id)
    eighth = log(client, auth, case_id, call(at=T0 - timedelta(minutes=5), outcome="voicemail"))
    assert eighth.status_code == 201
    entry = eighth.json["contact"]["id"]
    assert [f["code"] for f in eighth.json["contact"]["flags"]] == [FREQUENCY]

    headers = {**auth.headers("dispatcher"), "X-Request-Id": "contact-flags-1"}
    page = client.get(f"{API}/flags", query_string={"code": FREQUENCY}, headers=headers)
    assert page.status_code == 200
    (item,) = page.json["items"]
    assert item["record_id"] == f"contact-{entry}"
    assert (item["kind"], item["case_id"], item["status"], item["version"]) == (
        "contact",
        case_id,
        "open",
        0,
    )
    assert item["details"]["attempts_in_period"] == 8
    # The list is a disclosure of the borrower's flag details, ledgered to that borrower.
    (ledgered,) = db.query("SELECT * FROM exposure_ledger WHERE request_id = 'contact-flags-1'")
    assert ledgered["borrower_id"] == _borrower_of_case(db, case_id)
    assert json.loads(ledgered["fields"]) == ["flag_details"]

    url = f"{API}/flags/contact-{entry}/{FREQUENCY}"
    resolved = client.post(
        f"{url}/resolve",
        json={"disposition": "breach", "comment": "Dialer retried too often", "version": 0},
        headers=auth.headers("dispatcher"),
    )
    assert resolved.status_code == 200, resolved.json
    assert (resolved.json["status"], resolved.json["version"]) == ("resolved", 1)
    assert [h["action"] for h in resolved.json["history"]] == ["resolve"]
    assert _flags(client, auth, status="resolved", code=FREQUENCY)["items"][0]["record_id"] == (
        f"contact-{entry}"
    )
    stored = db.execute(
        "SELECT status, disposition FROM flag_reviews WHERE record_id = ?", [f"contact-{entry}"]
    ).fetchone()
    assert tuple(stored) == ("resolved", "breach")


def test_an_imported_row_that_breaks_a_rule_is_a_review_item(client, auth, world):
    seven_calls(client, auth, world.cases["C-0002"])
    row = {
        "case_external_id": "C-0002",
        "channel": "phone_call",
        "occurred_at": iso(T0 - timedelta(minutes=3)),
        "outcome": "voicemail",
        "agent": "dialer-seat-7",
        "external_ref": "CALL-8",
    }
    answer = import_rows(client, auth, json.dumps(row), "application/x-ndjson")
    assert answer.json["flagged"] == 1
    (item,) = _flags(client, auth, code=FREQUENCY)["items"]
    assert item["kind"] == "contact" and item["agent_id"] is None and item["visit_id"] is None
    assert item["day"] == row["occurred_at"][:10]


def test_a_synced_contact_is_one_item_not_two(client, auth, world, db):
    case_id = world.cases["C-0001"]
    log(client, auth, case_id, call(at=T0 - timedelta(days=3), outcome="reached"))
    record = contact_record(world.visits["v1"], 1, outcome="voicemail")
    assert push(client, auth, [record])["outcomes"][0]["status"] in ("accepted", "flagged")
    items = _flags(client, auth, code="call_after_conversation")["items"]
    assert [i["record_id"] for i in items] == [record["id"]]
    # The log entry the phone's record became carries the flag too, but is not listed twice.
    (flags,) = db.execute(
        "SELECT flags FROM contacts WHERE source = 'sync' AND case_id = ?", [case_id]
    ).fetchone()
    assert "call_after_conversation" in {f["code"] for f in json.loads(flags)}


def test_pages_run_from_field_records_into_contact_entries(client, auth, world):
    case_id = world.cases["C-0002"]
    seven_calls(client, auth, case_id)
    for minutes in (5, 4, 3):  # three flagged calls: three contact items
        body = call(at=T0 - timedelta(minutes=minutes), outcome="voicemail")
        assert log(client, auth, case_id, body).status_code == 201
    record = contact_record(world.visits["v1"], 1, outcome="voicemail")
    log(client, auth, world.cases["C-0001"], call(at=T0 - timedelta(days=3), outcome="reached"))
    push(client, auth, [record])
    every = _flags(client, auth, limit=100)["items"]
    seen, after = [], 0
    while after is not None:
        page = _flags(client, auth, limit=2, after=after)
        seen += page["items"]
        after = page["next_after"]
    assert [i["position"] for i in seen] == [i["position"] for i in every]
    assert [i["kind"] for i in every][-3:] == ["contact"] * 3
    assert every[0]["record_id"] == record["id"]


def test_an_unknown_contact_item_is_404(client, auth, world):
    for record_id in ("contact-999999", "contact-x", "contact-"):
        answer = client.get(
            f"{API}/flags/{record_id}/{FREQUENCY}", headers=auth.headers("dispatcher")
        )
        assert answer.status_code == 404, (record_id, answer.json)
