"""The contact log: logged over the API, imported from a dialer, synced from the phones, and
read back as a log and as the case's ladder."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import timedelta

import pytest

from tests.api.test_sync import push, report
from tests.conftest import T0

API = "/api/v1"


def iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def call(at=T0 - timedelta(hours=1), **extra) -> dict:
    return {"channel": "phone_call", "occurred_at": iso(at), "outcome": "no_answer", **extra}


def contact_record(visit_id, seq, at=T0 - timedelta(minutes=50), **body) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "kind": "contact",
        "visit_id": visit_id,
        "device_seq": seq,
        "recorded_at": iso(at + timedelta(minutes=2)),
        "body": {"channel": "phone_call", "occurred_at": iso(at), "outcome": "reached", **body},
    }


def log(client, auth, case_id, body):
    return client.post(
        f"{API}/cases/{case_id}/contacts", json=body, headers=auth.headers("dispatcher")
    )


def entries(client, auth, case_id, **query):
    answer = client.get(
        f"{API}/cases/{case_id}/contacts", query_string=query, headers=auth.headers("dispatcher")
    )
    assert answer.status_code == 200, answer.json
    return answer.json["items"]


def import_rows(client, auth, text, content_type):
    return client.post(
        f"{API}/contacts/import",
        data=text,
        headers={**auth.headers("dispatcher"), "Content-Type": content_type},
    )


# -- logging over the API ------------------------------------------------------------------


def test_a_logged_call_is_on_the_log_with_who_and_notes(client, auth, world, db):
    case_id = world.cases["C-0001"]
    body = call(notes="left a message with the receptionist", duration_s=40)
    answer = log(client, auth, case_id, {**body, "outcome": "voicemail"})
    assert answer.status_code == 201, answer.json
    contact = answer.json["contact"]
    assert contact["channel"] == "phone_call" and contact["direction"] == "outbound"
    assert contact["outcome"] == "voicemail" and contact["duration_s"] == 40
    assert contact["agent_id"] == world.users["dispatcher"] and contact["sources"] == ["api"]
    (row,) = db.query("SELECT * FROM contacts")
    assert (row["case_id"], row["notes"], row["logged_by"]) == (
        case_id,
        "left a message with the receptionist",
        world.users["dispatcher"],
    )
    (action,) = db.query("SELECT * FROM staff_audit WHERE action = 'contact_logged'")
    assert "receptionist" not in action["details"]  # the staff log says what, never the notes
    assert [e["id"] for e in entries(client, auth, case_id)] == [contact["id"]]


def test_the_same_contact_twice_is_a_409_naming_the_entry(client, auth, world, db):
    case_id = world.cases["C-0001"]
    first = log(client, auth, case_id, call())
    again = log(client, auth, case_id, call(outcome="busy"))
    assert again.status_code == 409
    assert again.json["error"]["code"] == "contact_exists"
    assert again.json["error"]["details"]["contact_id"] == first.json["contact"]["id"]
    assert db.execute("SELECT count(*) FROM contacts").fetchone()[0] == 1


def test_an_outcome_outside_the_channels_vocabulary_is_refused(client, auth, world):
    answer = log(client, auth, world.cases["C-0001"], call(channel="sms", outcome="voicemail"))
    assert answer.status_code == 422 and answer.json["error"]["field"] == "outcome"
    visit = log(client, auth, world.cases["C-0001"], call(channel="home_visit"))
    assert visit.status_code == 422 and visit.json["error"]["field"] == "channel"


def test_a_contact_in_the_future_is_refused(client, auth, world):
    answer = log(client, auth, world.cases["C-0001"], call(at=T0 + timedelta(minutes=10)))
    assert answer.status_code == 422 and answer.json["error"]["field"] == "occurred_at"
    row = {**_dialer_rows(1)[0], "occurred_at": iso(T0 + timedelta(hours=1))}
    imported = import_rows(client, auth, json.dumps(row), "application/x-ndjson")
    assert imported.json["rejected"] == 1
    assert imported.json["errors"][0]["field"] == "occurred_at"


def test_a_visit_of_another_case_and_an_unknown_case_are_refused(client, auth, world):
    other = log(client, auth, world.cases["C-0001"], call(visit_id=world.visits["v2"]))
    assert other.status_code == 422 and other.json["error"]["field"] == "visit_id"
    assert log(client, auth, 999999, call()).status_code == 404
    assert (
        client.get(f"{API}/cases/999999/contacts", headers=auth.headers("dispatcher")).status_code
        == 404
    )


def test_agents_and_privacy_officers_may_not_read_the_log(client, auth, world):
    for user in ("agent1", "privacy", "admin"):
        answer = client.get(
            f"{API}/cases/{world.cases['C-0001']}/contacts", headers=auth.headers(user)
        )
        assert answer.status_code == 403, user


def test_reading_the_log_is_ledgered_with_the_contact_facts(client, auth, world, db):
    case_id = world.cases["C-0001"]
    log(client, auth, case_id, call(notes="borrower said call after six"))
    headers = {**auth.headers("dispatcher"), "X-Request-Id": "read-contacts-1"}
    assert client.get(f"{API}/cases/{case_id}/contacts", headers=headers).status_code == 200
    (entry,) = db.query("SELECT * FROM exposure_ledger WHERE request_id = 'read-contacts-1'")
    borrower = db.execute("SELECT borrower_id FROM cases WHERE id = ?", [case_id]).fetchone()[0]
    assert entry["borrower_id"] == borrower and entry["purpose"] == "dispatch_planning"
    assert {"contact_log", "contact_notes"} <= set(json.loads(entry["fields"]))


# -- the import ----------------------------------------------------------------------------


def _dialer_rows(n: int) -> list[dict]:
    return [
        {
            "case_external_id": f"C-000{1 + i % 4}",
            "channel": "phone_call",
            "occurred_at": iso(T0 - timedelta(hours=3, minutes=i)),
            "outcome": "no_answer" if i % 2 else "reached",
            "agent": "dialer-seat-7",
            "duration_s": 12 + i,
            "external_ref": f"CALL-{i:05d}",
        }
        for i in range(n)
    ]


def test_a_jsonl_import_is_idempotent(client, auth, world, db):
    text = "\n".join(json.dumps(r) for r in _dialer_rows(30))
    first = import_rows(client, auth, text, "application/x-ndjson")
    assert first.status_code == 200, first.json
    assert (first.json["created"], first.json["already_logged"], first.json["rejected"]) == (
        30,
        0,
        0,
    )
    again = import_rows(client, auth, text, "application/x-ndjson")
    assert (again.json["created"], again.json["already_logged"]) == (0, 30)
    assert db.execute("SELECT count(*) FROM contacts").fetchone()[0] == 30
    assert db.execute("SELECT count(*) FROM contact_sources").fetchone()[0] == 30
    row = next(db.query("SELECT * FROM contacts WHERE external_ref = 'CALL-00003'"))
    assert row["agent_id"] is None and row["agent_name"] == "dialer-seat-7"


def test_a_csv_import_is_idempotent_and_reports_bad_rows(client, auth, world, db):
    rows = _dialer_rows(5)
    rows[1]["outcome"] = "delivered"  # not a phone outcome
    rows[2]["case_external_id"] = "C-9999"
    rows[3]["agent"] = "agent1"  # a Doorstep user: the entry names the user
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    first = import_rows(client, auth, buffer.getvalue(), "text/csv")
    assert first.status_code == 200, first.json
    assert (first.json["created"], first.json["rejected"]) == (3, 2)
    assert {(e["row"], e["field"]) for e in first.json["errors"]} == {
        (2, "outcome"),
        (3, "case_external_id"),
    }
    again = import_rows(client, auth, buffer.getvalue(), "text/csv")
    assert (again.json["created"], again.json["already_logged"], again.json["rejected"]) == (
        0,
        3,
        2,
    )
    assert db.execute("SELECT count(*) FROM contacts").fetchone()[0] == 3
    user_row = next(db.query("SELECT * FROM contacts WHERE external_ref = 'CALL-00003'"))
    assert user_row["agent_id"] == world.users["agent1"] and user_row["agent_name"] is None


def test_the_cli_imports_with_a_progress_bar_and_is_idempotent(app, world, db, tmp_path):
    path = tmp_path / "dialer.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _dialer_rows(12)))
    runner = app.test_cli_runner()
    first = runner.invoke(args=["import-contacts", str(path)])
    assert first.exit_code == 0, first.output
    assert "12 rows: 12 logged, 0 already on the log, 0 rejected" in first.output
    again = runner.invoke(args=["import-contacts", str(path), "--quiet"])
    assert "12 rows: 0 logged, 12 already on the log" in again.output
    assert db.execute("SELECT count(*) FROM contacts").fetchone()[0] == 12


def test_an_import_needs_a_known_format(client, auth, world):
    answer = import_rows(client, auth, "x", "text/plain")
    assert answer.status_code == 415


# -- the phone's offline contacts -----------------------------------------------------------


def test_a_synced_call_is_accepted_logged_and_replayed_as_duplicate(client, auth, world, db):
    record = contact_record(world.visits["v1"], 1, notes="borrower asked for a visit")
    first = push(client, auth, [record])["outcomes"][0]
    assert first["status"] == "accepted", first
    (row,) = db.query("SELECT * FROM contacts")
    assert (row["agent_id"], row["visit_id"], row["source"], row["outcome"]) == (
        world.users["agent1"],
        world.visits["v1"],
        "sync",
        "reached",
    )
    again = push(client, auth, [record])["outcomes"][0]
    assert again["status"] == "duplicate" and again["original_status"] == "accepted"
    assert db.execute("SELECT count(*) FROM contacts").fetchone()[0] == 1
    stored = db.execute("SELECT kind FROM sync_records WHERE id = ?", [record["id"]]).fetchone()
    assert stored[0] == "contact"


def test_a_synced_contact_with_a_bad_body_is_rejected_naming_the_field(client, auth, world, db):
    bad = [
        (contact_record(world.visits["v1"], 1, outcome="delivered"), "body.outcome"),
        (contact_record(world.visits["v1"], 2, channel="letter"), "body.channel"),
        (contact_record(world.visits["v1"], 3, occurred_at="yesterday"), "body.occurred_at"),
    ]
    outcomes = push(client, auth, [record for record, _ in bad])["outcomes"]
    for outcome, (_, field) in zip(outcomes, bad, strict=True):
        assert (outcome["status"], outcome["reason"]) == ("rejected", "malformed"), outcome
        assert outcome["message"].startswith(field), outcome
    assert db.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0


def test_a_contact_for_a_visit_never_yours_is_rejected(client, auth, world, db):
    outcome = push(client, auth, [contact_record(world.visits["v3"], 1)])["outcomes"][0]
    assert (outcome["status"], outcome["reason"]) == ("rejected", "not_yours")
    assert db.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0


def test_the_phones_call_and_the_dialers_row_are_one_entry(client, auth, world, db):
    """Recognised by the natural key: case, channel, direction, the UTC second, who."""
    at = T0 - timedelta(minutes=50)
    push(client, auth, [contact_record(world.visits["v1"], 1, at=at)])
    row = {
        "case_external_id": "C-0001",
        "channel": "phone_call",
        "occurred_at": (at + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S+08:00"),
        "outcome": "reached",
        "agent": "AGENT1",
        "duration_s": 95,
    }
    answer = import_rows(client, auth, json.dumps(row), "application/x-ndjson")
    assert (answer.json["created"], answer.json["already_logged"]) == (0, 1)
    (entry,) = entries(client, auth, world.cases["C-0001"], channel="phone_call")
    assert entry["sources"] == ["import", "sync"] and entry["source"] == "sync"


def test_the_dialers_row_then_the_phones_call_share_the_external_ref(client, auth, world, db):
    """Recognised by the dialer's call id when both carry it, whatever the clocks said."""
    row = {
        "case_external_id": "C-0001",
        "channel": "phone_call",
        "occurred_at": iso(T0 - timedelta(minutes=51)),
        "outcome": "reached",
        "agent": "dialer-seat-7",
        "external_ref": "CALL-77",
    }
    import_rows(client, auth, json.dumps(row), "application/x-ndjson")
    record = contact_record(world.visits["v1"], 1, external_ref="CALL-77")
    assert push(client, auth, [record])["outcomes"][0]["status"] == "accepted"
    (entry,) = entries(client, auth, world.cases["C-0001"])
    assert entry["external_ref"] == "CALL-77" and entry["sources"] == ["import", "sync"]


def test_home_visit_reports_appear_on_the_log(client, auth, world):
    push(client, auth, [report(world.visits["v1"], 1, outcome="not_home", notes="secret")])
    (entry,) = entries(client, auth, world.cases["C-0001"])
    assert (entry["channel"], entry["outcome"], entry["source"]) == (
        "home_visit",
        "not_home",
        "visit_report",
    )
    assert entry["visit_id"] == world.visits["v1"] and entry["record_id"]
    assert entry["notes"] is None  # the report's notes are read through GET /records


# -- the timeline ----------------------------------------------------------------------------


def timeline(client, auth, case_id):
    answer = client.get(f"{API}/cases/{case_id}/timeline", headers=auth.headers("dispatcher"))
    assert answer.status_code == 200, answer.json
    return answer.json


def test_an_untouched_case_starts_with_a_notice(client, auth, world):
    body = timeline(client, auth, world.cases["C-0002"])
    assert body["current_rung"] is None and body["time_on_rung_s"] is None
    assert body["next_action"]["rung"] == "notice" and body["next_action"]["channel"] == "letter"
    assert [r["rung"] for r in body["rungs"]] == [
        "notice",
        "phone",
        "message",
        "home_visit",
        "legal",
    ]


def test_the_ladder_shows_each_rung_and_the_time_on_the_current_one(client, auth, world):
    case_id = world.cases["C-0002"]
    log(
        client,
        auth,
        case_id,
        call(channel="letter", outcome="delivered", at=T0 - timedelta(days=10)),
    )
    log(client, auth, case_id, call(at=T0 - timedelta(days=3)))
    log(client, auth, case_id, call(at=T0 - timedelta(days=2), outcome="reached"))
    body = timeline(client, auth, case_id)
    assert body["current_rung"] == "phone"
    assert body["time_on_rung_s"] == 3 * 86400
    phone = body["rungs"][1]
    assert (phone["contacts"], phone["last_outcome"]) == (2, "reached")
    assert phone["outcomes"] == {"no_answer": 1, "reached": 1}
    assert [e["outcome"] for e in phone["entries"]] == ["no_answer", "reached"]
    # 10:00 in Shanghai is inside the contact hours: an SMS may go now.
    assert body["next_action"] == {
        "rung": "message",
        "channel": "sms",
        "earliest_at": "2026-11-24T02:00:00.000000Z",
        "reason": "next_rung",
        "awaiting_until": None,
    }


def test_a_pending_promise_holds_the_ladder_until_its_deadline(client, auth, world, clock):
    """A borrower keeping their word is not pushed up the ladder: while a promise is pending
    the next step waits for the end of its grace period (PAYMENT_GRACE_DAYS, 3), then
    climbs as before."""
    case_id = world.cases["C-0001"]
    log(client, auth, case_id, call(at=T0 - timedelta(days=1), outcome="reached"))
    due = (T0 + timedelta(days=2)).date().isoformat()
    outcome = push(
        client,
        auth,
        [
            report(
                world.visits["v1"],
                1,
                outcome="promise_to_pay",
                promise_amount="300.00",
                promise_date=due,
            )
        ],
    )["outcomes"][0]
    assert outcome["status"] in ("accepted", "flagged"), outcome
    action = timeline(client, auth, case_id)["next_action"]
    # 2026-11-26 + 3 days of grace: the promise is broken from 2026-11-30 00:00 Shanghai.
    assert action["reason"] == "awaiting_promise" and action["earliest_at"] is None
    assert action["awaiting_until"] == "2026-11-29T16:00:00.000000Z"
    assert action["rung"] is not None  # the step to take if it breaks
    clock.advance(days=6)
    auth.sessions.pop("dispatcher", None)  # its token expired with the days
    after = timeline(client, auth, case_id)["next_action"]
    assert after["reason"] != "awaiting_promise" and after["awaiting_until"] is None


def test_do_not_contact_by_sms_moves_the_next_action_to_email(client, auth, world, db):
    case_id = world.cases["C-0002"]
    borrower = db.execute("SELECT borrower_id FROM cases WHERE id = ?", [case_id]).fetchone()[0]
    asked = client.post(
        f"{API}/borrowers/{borrower}/requests",
        json={"kind": "do_not_contact", "channel": "sms", "source": "phone"},
        headers=auth.headers("dispatcher"),
    )
    assert asked.status_code == 201, asked.json
    log(client, auth, case_id, call())
    body = timeline(client, auth, case_id)
    assert body["blocked_channels"] == ["sms"]
    assert (body["next_action"]["rung"], body["next_action"]["channel"]) == ("message", "email")


def test_a_home_visit_needs_a_notice_on_the_log_first(client, auth, world):
    case_id = world.cases["C-0002"]
    log(client, auth, case_id, call(channel="sms", outcome="delivered"))
    body = timeline(client, auth, case_id)
    assert body["current_rung"] == "message"
    assert body["next_action"]["reason"] == "notice_before_visit"
    assert body["next_action"]["channel"] == "letter"
    log(client, auth, case_id, call(channel="notice", outcome="sent", at=T0 - timedelta(days=1)))
    after = timeline(client, auth, case_id)
    assert (after["next_action"]["rung"], after["next_action"]["reason"]) == (
        "home_visit",
        "next_rung",
    )


def test_a_do_not_visit_case_skips_the_home_visit_rung(client, auth, world):
    case_id = world.cases["C-0005"]  # marked do-not-visit by the import
    log(client, auth, case_id, call(channel="email", outcome="sent"))
    body = timeline(client, auth, case_id)
    assert (body["next_action"]["rung"], body["next_action"]["channel"]) == (
        "legal",
        "legal_letter",
    )


def test_outside_contact_hours_the_next_call_waits_for_the_morning(client, auth, world, clock):
    clock.now = T0 + timedelta(hours=12)  # 22:00 in Shanghai
    auth.login("dispatcher")  # a token of the new time
    case_id = world.cases["C-0002"]
    log(
        client,
        auth,
        case_id,
        call(channel="letter", outcome="sent", at=clock.now - timedelta(days=1)),
    )
    body = timeline(client, auth, case_id)
    assert body["next_action"]["channel"] == "phone_call"
    assert body["next_action"]["earliest_at"] == "2026-11-25T00:00:00.000000Z"  # 08:00 local


def test_a_promise_made_on_a_call_is_tracked_once_whatever_reported_it(client, auth, world, db):
    """A call whose outcome is a promise carries its amount and date; the phone's record of
    the call and the dispatcher's entry for it are one log entry and one promise, judged
    like a visit's (pending, then broken on the worklist)."""
    case_id, visit_id = world.cases["C-0001"], world.visits["v1"]
    at = T0 - timedelta(minutes=50)
    due = (T0 + timedelta(days=1)).date().isoformat()
    promise = {"outcome": "promise", "promise_amount": "250.00", "promise_date": due}
    synced = push(
        client, auth, [contact_record(visit_id, 1, at, external_ref="dial-9", **promise)]
    )["outcomes"][0]
    assert synced["status"] in ("accepted", "flagged"), synced
    logged = log(client, auth, case_id, call(at=at, external_ref="dial-9", **promise))
    assert logged.status_code == 409  # the same call: already on the log
    rows = db.execute("SELECT source, amount, due_date FROM promises").fetchall()
    assert rows == [("phone_call", "250.00", due)]
    judged_late = client.get(
        f"{API}/worklists/promises",
        query_string={"day": (T0 + timedelta(days=10)).date().isoformat()},
        headers=auth.headers("dispatcher"),
    )
    assert judged_late.status_code == 200, judged_late.json
    (item,) = [i for i in judged_late.json["items"] if i["source"] == "phone_call"]
    assert item["promise"]["amount"] == "250.00" and item["status"]["state"] == "broken"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (
            {"outcome": "no_answer", "promise_amount": "10.00", "promise_date": "2026-12-01"},
            "promise_amount",
        ),
        ({"outcome": "promise", "promise_amount": "10.00"}, "promise_date"),
        ({"outcome": "promise", "promise_date": "2026-12-01"}, "promise_amount"),
        (
            {"outcome": "promise", "promise_amount": "1.005", "promise_date": "2026-12-01"},
            "promise_amount",
        ),
    ],
)
def test_a_promise_on_a_contact_is_refused_when_it_does_not_fit(client, auth, world, extra, field):
    answer = log(client, auth, world.cases["C-0001"], call(**extra))
    assert answer.status_code == 422, answer.json
    assert answer.json["error"]["field"] == field


def test_a_dialer_row_that_records_a_promise_is_tracked_once(client, auth, world, db):
    """An import row whose outcome is `promise` carries the amount and due day (JSON Lines or
    CSV); importing it again, or the phone's record of the same call, adds no second
    promise; a promise on another outcome is refused by row and field."""
    at = T0 - timedelta(minutes=40)
    due = (T0 + timedelta(days=2)).date().isoformat()
    row = {
        "case_external_id": "C-0001",
        "channel": "phone_call",
        "occurred_at": iso(at),
        "outcome": "promise",
        "agent": "seat-4",
        "external_ref": "dial-77",
        "promise_amount": "120.50",
        "promise_date": due,
    }
    bad = {**row, "external_ref": "dial-78", "outcome": "no_answer"}
    first = import_rows(
        client, auth, "\n".join(map(json.dumps, (row, bad))), "application/x-ndjson"
    )
    assert first.status_code == 200, first.json
    assert (first.json["created"], first.json["rejected"]) == (1, 1)
    assert [(e["row"], e["field"]) for e in first.json["errors"]] == [(2, "promise_amount")]
    header = ",".join(row)
    cells = ",".join(str(v) for v in row.values())
    again = import_rows(client, auth, f"{header}\n{cells}\n", "text/csv")
    assert (again.json["created"], again.json["already_logged"]) == (0, 1), again.json
    rows = db.execute("SELECT source, amount, due_date, case_id FROM promises").fetchall()
    assert rows == [("phone_call", "120.50", due, world.cases["C-0001"])]
