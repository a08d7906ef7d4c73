"""Payments import (idempotent, CSV and JSON Lines), the promises worklist and the card's
repayment status."""

from __future__ import annotations

import csv
import io
import json
import uuid
from decimal import Decimal

from sync.canonical import agreement_content_hash

API = "/api/v1"
PNG = b"\x89PNG\r\n\x1a\n"


def _import(client, auth, body: str, content_type: str, role: str = "dispatcher"):
    return client.post(
        f"{API}/payments/import",
        data=body,
        headers={**auth.headers(role), "Content-Type": content_type},
    )


def _jsonl(rows) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows)


def _csv(rows) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def payment(n: int, case: str = "C-0001", amount: str = "100.00", paid_at=None, **extra):
    return {
        "payment_id": f"PAY-{n}",
        "case_external_id": case,
        "amount": amount,
        "currency": "CNY",
        "paid_at": paid_at or "2026-11-20T10:00:00+08:00",
        "source": "bank_transfer",
        **extra,
    }


def _stored(db) -> list[tuple]:
    return db.execute("SELECT id, amount, paid_at, source FROM payments ORDER BY id").fetchall()


# -- import ------------------------------------------------------------------------------


def test_jsonl_import_keeps_good_rows_reports_bad_ones_by_line_and_field(world, client, auth, db):
    rows = [
        payment(1),
        payment(2, amount="-5"),
        "{not json",
        payment(4, case="C-9999"),
        payment(5, currency="USD"),
        payment(6, paid_at="2026-11-20T10:00:00"),  # no offset
        payment(7, amount="10.005"),
        payment(8, surprise=1),
        payment(9, amount="0"),
        payment(10, amount="250.5"),
    ]
    answer = _import(client, auth, _jsonl(rows), "application/x-ndjson")
    assert answer.status_code == 200, answer.json
    report = answer.json
    assert (report["total_rows"], report["created"], report["rejected"]) == (10, 2, 8)
    errors = {e["row"]: (e["payment_id"], e["field"]) for e in report["errors"]}
    assert errors == {
        2: ("PAY-2", "amount"),
        3: (None, None),
        4: ("PAY-4", "case_external_id"),
        5: ("PAY-5", "currency"),
        6: ("PAY-6", "paid_at"),
        7: ("PAY-7", "amount"),
        8: ("PAY-8", "surprise"),
        9: ("PAY-9", "amount"),
    }
    # stored in UTC, amounts with two fraction digits like agreements
    assert _stored(db) == [
        ("PAY-1", "100.00", "2026-11-20T02:00:00.000000Z", "bank_transfer"),
        ("PAY-10", "250.50", "2026-11-20T02:00:00.000000Z", "bank_transfer"),
    ]
    logged = db.execute(
        "SELECT details FROM staff_audit WHERE action = 'payments_imported'"
    ).fetchone()
    assert json.loads(logged[0])["created"] == 2


def test_reimport_adds_nothing_and_a_changed_payment_is_refused(world, client, auth, db):
    rows = [payment(1), payment(2, amount="40.00")]
    first = _import(client, auth, _jsonl(rows), "application/x-ndjson").json
    assert (first["created"], first["unchanged"]) == (2, 0)
    # the same payments again, as CSV this time: same content, nothing added
    again = _import(client, auth, _csv(rows), "text/csv").json
    assert (again["created"], again["unchanged"], again["rejected"]) == (0, 2, 0)
    changed = _import(client, auth, _jsonl([payment(2, amount="41.00"), payment(3)]), "text/csv")
    # a JSON Lines body sent as CSV: told by the format query instead
    changed = client.post(
        f"{API}/payments/import?format=jsonl",
        data=_jsonl([payment(2, amount="41.00"), payment(3)]),
        headers={**auth.headers("dispatcher"), "Content-Type": "text/plain"},
    ).json
    assert (changed["created"], changed["rejected"]) == (1, 1)
    assert changed["errors"][0]["field"] == "payment_id"
    assert [r[:2] for r in _stored(db)] == [
        ("PAY-1", "100.00"),
        ("PAY-2", "40.00"),
        ("PAY-3", "100.00"),
    ]


def test_csv_import_reports_rows_with_too_many_cells(world, client, auth, db):
    body = _csv([payment(1), payment(2)]) + "PAY-3,C-0001,1.00,CNY,2026-11-20T10:00:00Z,x,extra\n"
    report = _import(client, auth, body, "text/csv").json
    assert (report["created"], report["rejected"]) == (2, 1)
    assert report["errors"][0]["row"] == 3


def test_import_refuses_an_unknown_format_and_an_empty_body(world, client, auth):
    assert _import(client, auth, "x", "application/pdf").status_code == 415
    empty = _import(client, auth, "  \n", "text/csv")
    assert empty.status_code == 422 and empty.json["error"]["field"] == "body"


def test_only_dispatchers_and_admins_import_payments(world, client, auth):
    assert (
        _import(client, auth, _jsonl([payment(1)]), "application/x-ndjson", "admin").json["created"]
        == 1
    )
    for role in ("agent1", "privacy"):
        assert (
            _import(client, auth, _jsonl([payment(2)]), "application/x-ndjson", role).status_code
            == 403
        )


def test_cli_import_payments_is_idempotent(world, app, db, tmp_path):
    path = tmp_path / "payments.csv"
    path.write_text(_csv([payment(1), payment(2, amount="abc")]))
    runner = app.test_cli_runner()
    first = runner.invoke(args=["import-payments", str(path), "--quiet"])
    assert "2 rows: 1 created, 0 unchanged, 1 rejected" in first.output, first.output
    assert "row 2: amount:" in first.output
    again = runner.invoke(args=["import-payments", str(path), "--quiet"])
    assert "0 created, 1 unchanged, 1 rejected" in again.output
    assert len(_stored(db)) == 1


# -- promises, instalments, the worklist -------------------------------------------------


def push(client, auth, records, agent="agent1"):
    answer = client.post(
        f"{API}/sync/push",
        json={"device_time": "2026-11-24T02:00:00Z", "records": records},
        headers=auth.headers(agent),
    )
    assert answer.status_code == 200, answer.json
    assert all(o["status"] in ("accepted", "flagged") for o in answer.json["outcomes"]), answer.json
    return answer.json["outcomes"]


def promise_report(visit_id: int, amount: str, due: str, seq: int = 1) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "kind": "visit_report",
        "visit_id": visit_id,
        "device_seq": seq,
        "recorded_at": "2026-11-24T01:50:00Z",
        "body": {
            "arrived_at": "2026-11-24T01:30:00Z",
            "outcome": "promise_to_pay",
            "promise_amount": amount,
            "promise_date": due,
            "location": {"lat": 31.201, "lon": 121.401, "accuracy_m": 10},
        },
    }


def agreement(
    client, auth, visit_id: int, case_id: int, instalments, seq: int = 2, signed_at=None
) -> dict:
    sigs = []
    for who in (b"borrower", b"agent"):
        data = PNG + who + str(seq).encode()
        digest = __import__("hashlib").sha256(data).hexdigest()
        client.put(
            f"{API}/attachments/{digest}",
            data=data,
            headers={**auth.headers("agent1"), "Content-Type": "image/png"},
        )
        sigs.append(digest)
    record_id = str(uuid.uuid4())
    body = {
        "agreement_id": record_id,
        "case_id": case_id,
        "visit_id": visit_id,
        "currency": "CNY",
        "total_amount": str(sum(Decimal(a) for _, a in instalments)),
        "installments": [{"due_date": d, "amount": a} for d, a in instalments],
        "template_id": "repayment-plan",
        "template_version": 1,
        "borrower_signature_sha256": sigs[0],
        "agent_signature_sha256": sigs[1],
        "signed_at": signed_at or "2026-11-24T01:55:00Z",
        "signed_lat": "31.201",
        "signed_lon": "121.401",
    }
    body["content_hash"] = agreement_content_hash(body)
    return {
        "id": record_id,
        "kind": "agreement",
        "visit_id": visit_id,
        "device_seq": seq,
        "recorded_at": "2026-11-24T01:56:00Z",
        "body": body,
    }


def test_only_the_agreement_signed_last_is_owed(world, client, auth):
    v1, c1 = world.visits["v1"], world.cases["C-0001"]
    # the second record pushed was signed first (09:40 in Shanghai, 01:50 UTC is 09:50)
    push(
        client,
        auth,
        [
            agreement(client, auth, v1, c1, [("2026-12-01", "100.00")], 1),
            agreement(
                client, auth, v1, c1, [("2026-12-05", "70.00")], 2, "2026-11-24T09:40:00+08:00"
            ),
        ],
    )
    items = worklist(client, auth, day="2027-01-01")["items"]
    assert [(i["instalment"]["amount"], i["instalment"]["due_date"]) for i in items] == [
        ("100.00", "2026-12-01")
    ]


def worklist(client, auth, **query):
    answer = client.get(
        f"{API}/worklists/promises", query_string=query, headers=auth.headers("dispatcher")
    )
    assert answer.status_code == 200, answer.json
    return answer.json


def test_worklist_lists_broken_promises_and_overdue_instalments_with_next_action(
    world, client, auth, db
):
    v1, c1 = world.visits["v1"], world.cases["C-0001"]
    push(
        client,
        auth,
        [
            promise_report(v1, "300.00", "2026-11-26"),
            agreement(client, auth, v1, c1, [("2026-12-10", "300.00"), ("2027-01-10", "300.00")]),
        ],
    )
    # paid 350 on 11-27 (in the grace days): the promise is kept, 50 goes to instalment 1
    _import(
        client,
        auth,
        _jsonl([payment(1, amount="350.00", paid_at="2026-11-27T09:00:00+08:00")]),
        "application/x-ndjson",
    )
    assert worklist(client, auth, day="2026-11-30")["items"] == []
    listed = worklist(client, auth, day="2026-12-20")
    assert [
        (i["kind"], i["status"]["state"], i["status"]["amount_due"]) for i in listed["items"]
    ] == [("instalment", "partly_kept", "250.00")]
    item = listed["items"][0]
    assert item["case_external_id"] == "C-0001" and item["agent_id"] == world.users["agent1"]
    assert item["instalment"]["number"] == 1 and item["promise"] is None
    assert item["status"]["deadline"] == "2026-12-13"
    assert item["next_action"] == {"action": "phone_call", "reason": "overdue"}
    # the borrower asks not to be phoned: a letter instead
    borrower = db.execute("SELECT borrower_id FROM cases WHERE id = ?", [c1]).fetchone()[0]
    asked = client.post(
        f"{API}/borrowers/{borrower}/requests",
        json={"kind": "do_not_contact", "channel": "phone", "source": "letter"},
        headers=auth.headers("dispatcher"),
    )
    assert asked.status_code == 201, asked.json
    later = worklist(client, auth, day="2027-02-01")["items"]
    assert [(i["obligation_id"].split("#")[1], i["status"]["state"]) for i in later] == [
        ("1", "partly_kept"),
        ("2", "broken"),
    ]
    assert {i["next_action"]["action"] for i in later} == {"letter"}
    # the dispatcher's reading is ledgered: what is owed, the terms, the borrower's requests
    entry = db.execute(
        "SELECT fields, purpose FROM exposure_ledger WHERE endpoint LIKE '%worklists%' "
        "ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert set(json.loads(entry[0])) == {"agreement_terms", "repayment_status", "borrower_requests"}
    assert entry[1] == "dispatch_planning"


def test_a_broken_visit_report_promise_and_the_filters(world, client, auth, db):
    push(client, auth, [promise_report(world.visits["v1"], "200.00", "2026-11-25")])
    push(client, auth, [promise_report(world.visits["v3"], "80.00", "2026-11-25")], "agent2")
    # a promise made on a phone call, as another source inserts it
    db.execute(
        "INSERT INTO promises (source, source_id, case_id, agent_id, amount, due_date, made_at) "
        "VALUES ('phone_call', 'call-1', ?, ?, '90.00', '2026-11-26', '2026-11-23T02:00:00Z')",
        [world.cases["C-0002"], world.users["agent1"]],
    )
    db.execute("UPDATE agents SET region = 'north' WHERE user_id = ?", [world.users["agent2"]])
    db.conn.commit()
    everything = worklist(client, auth, day="2026-12-01")["items"]
    assert [(i["case_external_id"], i["source"], i["status"]["state"]) for i in everything] == [
        ("C-0001", "visit_report", "broken"),
        ("C-0002", "phone_call", "broken"),
        ("C-0003", "visit_report", "broken"),
    ]
    assert everything[0]["promise"] == {
        "amount": "200.00",
        "due_date": "2026-11-25",
        "made_on": "2026-11-24",
    }
    by_agent = worklist(client, auth, day="2026-12-01", agent_id=world.users["agent2"])
    assert [i["case_external_id"] for i in by_agent["items"]] == ["C-0003"]
    assert [
        i["case_external_id"]
        for i in worklist(client, auth, day="2026-12-01", team="north")["items"]
    ] == ["C-0003"]
    assert worklist(client, auth, day="2026-12-01", team="south")["items"] == []
    # pages of whole cases
    first = worklist(client, auth, day="2026-12-01", limit=2)
    assert [i["case_external_id"] for i in first["items"]] == ["C-0001", "C-0002"]
    rest = worklist(client, auth, day="2026-12-01", limit=2, after=first["next_after"])
    assert [i["case_external_id"] for i in rest["items"]] == ["C-0003"]
    assert rest["next_after"] is None
    # a legal hold: still on the list, but no contact is lawful
    db.execute("UPDATE cases SET legal_hold = 1 WHERE id = ?", [world.cases["C-0003"]])
    db.conn.commit()
    held = worklist(client, auth, day="2026-12-01", agent_id=world.users["agent2"])["items"][0]
    assert held["next_action"] == {"action": "none", "reason": "case_legal_hold"}


def test_worklist_rejects_bad_filters_and_other_roles(world, client, auth):
    bad = client.get(f"{API}/worklists/promises?day=2026-13-01", headers=auth.headers("dispatcher"))
    assert bad.status_code == 422 and bad.json["error"]["field"] == "day"
    for user in ("agent1", "admin", "privacy"):
        answer = client.get(f"{API}/worklists/promises", headers=auth.headers(user))
        assert answer.status_code == 403


# -- the agent's card --------------------------------------------------------------------


def _card(client, auth, visit_id: int) -> dict:
    answer = client.get(f"{API}/visits/{visit_id}", headers=auth.headers("agent1"))
    assert answer.status_code == 200, answer.json
    return answer.json["borrower"]


def test_the_agents_card_shows_the_most_pressing_promise_minimally(world, client, auth, db, clock):
    v1 = world.visits["v1"]
    assert _card(client, auth, v1)["repayment_status"] is None
    push(client, auth, [promise_report(v1, "300.00", "2026-11-20")])  # already past (typo'd)
    card = _card(client, auth, v1)
    assert card["repayment_status"] == {
        "kind": "promise",
        "state": "broken",
        "due_date": "2026-11-20",
        "amount_due": "300.00",
        "currency": "CNY",
    }
    _import(
        client,
        auth,
        _jsonl([payment(1, amount="120.00", paid_at="2026-11-24T08:00:00+08:00")]),
        "application/x-ndjson",
    )
    assert _card(client, auth, v1)["repayment_status"]["amount_due"] == "180.00"
    entry = db.execute(
        "SELECT fields FROM exposure_ledger WHERE visit_id = ? ORDER BY seq DESC LIMIT 1", [v1]
    ).fetchone()
    assert "repayment_status" in json.loads(entry[0])
    # the dispatcher's card does not carry it
    dispatch = client.get(f"{API}/visits/{v1}", headers=auth.headers("dispatcher")).json
    assert "repayment_status" not in dispatch["borrower"]


def test_a_payment_changes_the_card_the_next_pull_sends(world, client, auth, db):
    v1 = world.visits["v1"]
    push(client, auth, [promise_report(v1, "300.00", "2026-11-30")])
    first = client.get(f"{API}/sync/pull", headers=auth.headers("agent1")).json
    card = next(c for c in first["upserts"] if c["id"] == v1)["borrower"]
    assert card["repayment_status"]["state"] == "pending"
    _import(
        client,
        auth,
        _jsonl([payment(1, amount="300.00", paid_at="2026-11-24T09:00:00+08:00")]),
        "application/x-ndjson",
    )
    second = client.get(
        f"{API}/sync/pull", query_string={"cursor": first["cursor"]}, headers=auth.headers("agent1")
    ).json
    resent = next(c for c in second["upserts"] if c["id"] == v1)["borrower"]
    assert resent["repayment_status"] is None  # kept: nothing owed any more
