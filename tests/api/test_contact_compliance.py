"""Compliance on every channel: a planned contact that breaks a rule is refused naming it; a
logged, imported or synced one is stored and flagged with it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.api.test_contacts import call, contact_record, import_rows, iso, log
from tests.api.test_sync import push, report
from tests.conftest import T0, TODAY, case_row

API = "/api/v1"


def plan(client, auth, case_id, channel, at=None):
    body = {"channel": channel, **({"at": iso(at)} if at else {})}
    return client.post(
        f"{API}/cases/{case_id}/contacts/plan", json=body, headers=auth.headers("dispatcher")
    )


def refused_rule(answer) -> str:
    assert answer.status_code == 422, answer.json
    assert answer.json["error"]["code"] == "contact_refused"
    return answer.json["error"]["details"]["rule"]


def flags_of(db, where: str, *params) -> set[str]:
    (raw,) = db.execute(f"SELECT flags FROM contacts WHERE {where}", list(params)).fetchone()
    return {f["code"] for f in json.loads(raw)}


def seven_calls(client, auth, case_id, outcome="no_answer"):
    """Seven attempts in the last seven days at 09:00 in Shanghai, none a conversation."""
    for n in range(7):
        at = T0 - timedelta(days=6 - n, hours=1)
        answer = log(client, auth, case_id, call(at=at, outcome=outcome))
        assert answer.status_code == 201, answer.json
        assert answer.json["contact"]["flags"] == []


def test_the_eighth_call_in_seven_days_is_refused_when_planned(client, auth, world):
    case_id = world.cases["C-0002"]
    seven_calls(client, auth, case_id)
    assert refused_rule(plan(client, auth, case_id, "phone_call")) == "call_frequency_exceeded"
    # An SMS is not a call, and in eight days the oldest attempts have left the period.
    assert plan(client, auth, case_id, "sms").status_code == 200
    later = T0 + timedelta(days=2)
    assert plan(client, auth, case_id, "phone_call", at=later).status_code == 200


def test_calls_that_never_connected_do_not_count(client, auth, world):
    case_id = world.cases["C-0002"]
    seven_calls(client, auth, case_id, outcome="busy")
    answer = plan(client, auth, case_id, "phone_call")
    assert answer.status_code == 200 and answer.json["lawful"] is True


def test_the_eighth_call_logged_is_stored_and_flagged(client, auth, world, db):
    case_id = world.cases["C-0002"]
    seven_calls(client, auth, case_id)
    answer = log(client, auth, case_id, call(at=T0 - timedelta(minutes=5)))
    assert answer.status_code == 201
    (flag,) = answer.json["contact"]["flags"]
    assert flag["code"] == "call_frequency_exceeded"
    assert flag["details"] == {"attempts_in_period": 8, "allowed": 7, "period_days": 7}
    assert db.execute("SELECT count(*) FROM contacts").fetchone()[0] == 8


def test_the_eighth_call_synced_is_stored_and_flagged(client, auth, world, db):
    case_id = world.cases["C-0001"]
    seven_calls(client, auth, case_id)
    record = contact_record(world.visits["v1"], 1, outcome="no_answer")
    outcome = push(client, auth, [record])["outcomes"][0]
    # Stored; the agent is not told (the flag rests on other people's calls).
    assert outcome["status"] == "accepted", outcome
    status, stored = db.execute(
        "SELECT status, outcome FROM sync_records WHERE id = ?", [record["id"]]
    ).fetchone()
    assert status == "flagged"
    assert {f["code"] for f in json.loads(stored)["flags"]} == {"call_frequency_exceeded"}
    assert flags_of(db, "source = 'sync'") == {"call_frequency_exceeded"}


def test_the_eighth_call_imported_is_stored_and_flagged(client, auth, world, db):
    case_id = world.cases["C-0002"]
    seven_calls(client, auth, case_id)
    row = {
        "case_external_id": "C-0002",
        "channel": "phone_call",
        "occurred_at": iso(T0 - timedelta(minutes=3)),
        "outcome": "voicemail",
        "agent": "dialer-seat-7",
        "external_ref": "CALL-8",
    }
    answer = import_rows(client, auth, json.dumps(row), "application/x-ndjson")
    assert (answer.json["created"], answer.json["flagged"]) == (1, 1)
    assert flags_of(db, "external_ref = 'CALL-8'") == {"call_frequency_exceeded"}


def test_a_call_within_seven_days_after_a_conversation(client, auth, world, db):
    case_id = world.cases["C-0001"]
    log(client, auth, case_id, call(at=T0 - timedelta(days=3), outcome="reached"))
    assert refused_rule(plan(client, auth, case_id, "phone_call")) == "call_after_conversation"
    assert (
        plan(client, auth, case_id, "phone_call", at=T0 + timedelta(days=4, hours=1)).status_code
        == 200
    )
    record = contact_record(world.visits["v1"], 1, outcome="voicemail")
    assert push(client, auth, [record])["outcomes"][0]["status"] in ("accepted", "flagged")
    stored = db.execute("SELECT outcome FROM sync_records WHERE id = ?", [record["id"]]).fetchone()
    assert "call_after_conversation" in {f["code"] for f in json.loads(stored[0])["flags"]}


def test_do_not_contact_by_sms_blocks_sms_but_not_letters(client, auth, world, db):
    case_id = world.cases["C-0001"]
    borrower = db.execute("SELECT borrower_id FROM cases WHERE id = ?", [case_id]).fetchone()[0]
    asked = client.post(
        f"{API}/borrowers/{borrower}/requests",
        json={"kind": "do_not_contact", "channel": "sms", "source": "letter"},
        headers=auth.headers("dispatcher"),
    )
    assert asked.status_code == 201, asked.json
    assert refused_rule(plan(client, auth, case_id, "sms")) == "do_not_contact_channel"
    assert plan(client, auth, case_id, "letter").status_code == 200
    assert plan(client, auth, case_id, "phone_call").status_code == 200
    sent = log(client, auth, case_id, call(channel="sms", outcome="sent", at=T0))
    assert {f["code"] for f in sent.json["contact"]["flags"]} == {"do_not_contact_channel"}
    letter = log(client, auth, case_id, call(channel="letter", outcome="sent", at=T0))
    assert letter.json["contact"]["flags"] == []
    synced = contact_record(
        world.visits["v1"], 1, at=T0 + timedelta(minutes=1), channel="sms", outcome="sent"
    )
    push(client, auth, [synced])
    assert flags_of(db, "source = 'sync'") == {"do_not_contact_channel"}


def test_an_sms_sent_before_the_request_is_not_flagged(client, auth, world, db):
    case_id = world.cases["C-0001"]
    borrower = db.execute("SELECT borrower_id FROM cases WHERE id = ?", [case_id]).fetchone()[0]
    client.post(
        f"{API}/borrowers/{borrower}/requests",
        json={"kind": "do_not_contact", "channel": "sms", "source": "letter"},
        headers=auth.headers("dispatcher"),
    )
    earlier = log(
        client, auth, case_id, call(channel="sms", outcome="sent", at=T0 - timedelta(days=1))
    )
    assert earlier.json["contact"]["flags"] == []


@pytest.mark.parametrize(
    ("channel", "lawful"), [("phone_call", False), ("sms", False), ("letter", True)]
)
def test_contact_hours_hold_for_calls_and_messages_not_letters(
    client, auth, world, channel, lawful
):
    late = T0 + timedelta(hours=11, minutes=30)  # 21:30 in Shanghai
    answer = plan(client, auth, world.cases["C-0002"], channel, at=late)
    if lawful:
        assert answer.status_code == 200
    else:
        assert refused_rule(answer) == "outside_contact_hours"


def test_an_inbound_call_is_never_flagged(client, auth, world):
    case_id = world.cases["C-0002"]
    seven_calls(client, auth, case_id)
    late = T0 + timedelta(hours=12)
    auth.login("dispatcher")
    answer = log(client, auth, case_id, call(at=late - timedelta(hours=12), direction="inbound"))
    assert answer.status_code == 201 and answer.json["contact"]["flags"] == []


def _visit_without_notice(client, auth, world, n: int) -> tuple[int, int]:
    imported = client.post(
        f"{API}/cases/import",
        data=json.dumps(case_row(n)),
        headers={**auth.headers("dispatcher"), "Content-Type": "application/x-ndjson"},
    )
    assert imported.status_code == 200, imported.json
    case_id = client.get(
        f"{API}/cases",
        query_string={"external_id": f"C-{n:04d}"},
        headers=auth.headers("dispatcher"),
    ).json["items"]
    case_id = next(c["id"] for c in case_id if c["external_id"] == f"C-{n:04d}")
    visit = client.post(
        f"{API}/visits",
        json={"case_id": case_id, "agent_id": world.users["agent1"], "visit_date": TODAY},
        headers=auth.headers("dispatcher"),
    )
    assert visit.status_code == 201, visit.json
    return case_id, visit.json["visit"]["id"]


def db_case_id(client, auth, external_id: str) -> int:
    page = client.get(
        f"{API}/cases", query_string={"limit": 200}, headers=auth.headers("dispatcher")
    )
    assert page.status_code == 200, page.json
    return next(c["id"] for c in page.json["items"] if c["external_id"] == external_id)


def _stored_flags(db, record_id: str) -> set[str]:
    (raw,) = db.execute("SELECT outcome FROM sync_records WHERE id = ?", [record_id]).fetchone()
    return {f["code"] for f in json.loads(raw)["flags"]}


def test_a_home_visit_needs_a_prior_notice_and_a_notice_on_the_log_counts(client, auth, world, db):
    bare_case, bare_visit = _visit_without_notice(client, auth, world, 11)
    noticed_case, noticed_visit = _visit_without_notice(client, auth, world, 12)
    assert refused_rule(plan(client, auth, noticed_case, "home_visit")) == "no_prior_notice"
    letter = call(channel="notice", outcome="delivered", at=T0 - timedelta(days=2))
    assert log(client, auth, noticed_case, letter).status_code == 201
    assert plan(client, auth, noticed_case, "home_visit").status_code == 200
    bare, noticed = report(bare_visit, 1), report(noticed_visit, 2)
    push(client, auth, [bare, noticed])
    assert "no_prior_notice" in _stored_flags(db, bare["id"])
    assert "no_prior_notice" not in _stored_flags(db, noticed["id"])
    assert bare_case != noticed_case


def test_a_do_not_visit_case_refuses_a_planned_home_visit(client, auth, world):
    case_id = world.cases["C-0005"]
    log(
        client,
        auth,
        case_id,
        call(channel="letter", outcome="delivered", at=T0 - timedelta(days=2)),
    )
    assert refused_rule(plan(client, auth, case_id, "home_visit")) == "case_do_not_visit"
