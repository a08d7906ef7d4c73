"""Push, reconcile and pull through the API: nothing recorded in the field is lost or doubled."""

import hashlib
import json
import random
import uuid
from datetime import timedelta

import pytest

from sync.canonical import agreement_content_hash
from sync.receipts import verify_receipt
from tests.conftest import T0

PNG = b"\x89PNG\r\n\x1a\n" + b"signature-pixels"


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def rid():
    return str(uuid.uuid4())


def credential(visit_id, seq, badge="B-1", at=T0 - timedelta(minutes=40)):
    return {
        "id": rid(),
        "kind": "id_confirmation",
        "visit_id": visit_id,
        "device_seq": seq,
        "recorded_at": iso(at),
        "body": {
            "confirmation_kind": "agent_credential",
            "badge_number": badge,
            "borrower_acknowledged": True,
        },
    }


def report(visit_id, seq, at=T0 - timedelta(minutes=39), **body):
    base = {
        "arrived_at": iso(at),
        "departed_at": iso(at + timedelta(minutes=20)),
        "outcome": "met_borrower",
        "location": {"lat": 31.201, "lon": 121.401, "accuracy_m": 15},
    }
    base.update(body)
    return {
        "id": rid(),
        "kind": "visit_report",
        "visit_id": visit_id,
        "device_seq": seq,
        "recorded_at": iso(at + timedelta(minutes=20)),
        "body": base,
    }


def push(client, auth, records, user="agent1", **extra):
    body = {"device_time": iso(T0), "records": records, **extra}
    response = client.post("/api/v1/sync/push", json=body, headers=auth.headers(user))
    assert response.status_code == 200, response.json
    return response.json


def stored_digest(db):
    rows = db.execute(
        "SELECT id, kind, visit_id, digest, status, outcome, body FROM sync_records ORDER BY id"
    ).fetchall()
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest(), len(rows)


def test_clean_visit_is_accepted_and_replays_are_duplicates(world, client, auth, db):
    batch = [credential(world.visits["v1"], 1), report(world.visits["v1"], 2)]
    first = push(client, auth, batch)
    assert [o["status"] for o in first["outcomes"]] == ["accepted", "accepted"], first["outcomes"]
    digest = stored_digest(db)
    again = push(client, auth, list(reversed(batch)))
    assert [o["status"] for o in again["outcomes"]] == ["duplicate", "duplicate"]
    assert {o["original_status"] for o in again["outcomes"]} == {"accepted"}
    assert stored_digest(db) == digest


def test_day_replayed_three_times_shuffled_equals_one_delivery(world, client, auth, db, tmp_path):
    v1, v2 = world.visits["v1"], world.visits["v2"]
    day = [
        credential(v1, 1, at=T0 - timedelta(hours=3)),
        report(v1, 2, at=T0 - timedelta(hours=3) + timedelta(minutes=1)),
        credential(v2, 3, at=T0 - timedelta(hours=2)),
        report(v2, 4, at=T0 - timedelta(hours=2) + timedelta(minutes=1), outcome="not_home"),
        report(
            v2,
            5,
            at=T0 - timedelta(hours=1),
            outcome="promise_to_pay",
            promise_amount="300.00",
            promise_date="2026-12-01",
        ),
    ]
    batches = [day[:2], day[2:4], day[4:]]
    for batch in batches:
        push(client, auth, batch)
    once = stored_digest(db)
    assert once[1] == 5
    rng = random.Random(7)
    for _ in range(3):
        replay = [list(b) for b in batches]
        rng.shuffle(replay)
        for batch in replay:
            rng.shuffle(batch)
            outcomes = push(client, auth, batch)["outcomes"]
            assert {o["status"] for o in outcomes} == {"duplicate"}
    assert stored_digest(db) == once


def test_response_lost_after_commit_then_retry(world, client, auth, db):
    record = report(world.visits["v2"], 1)
    push(client, auth, [record])  # committed; pretend the phone never saw the answer
    retry = push(client, auth, [record])
    assert retry["outcomes"][0]["status"] == "duplicate"
    assert (
        db.execute("SELECT count(*) FROM sync_records WHERE id = ?", [record["id"]]).fetchone()[0]
        == 1
    )


def test_same_id_different_content_is_rejected_and_the_original_kept(world, client, auth, db):
    record = report(world.visits["v2"], 1, notes="first")
    push(client, auth, [record])
    changed = json.loads(json.dumps(record))
    changed["body"]["notes"] = "rewritten"
    outcome = push(client, auth, [changed])["outcomes"][0]
    assert (outcome["status"], outcome["reason"]) == ("rejected", "id_reused")
    body = json.loads(
        db.execute("SELECT body FROM sync_records WHERE id = ?", [record["id"]]).fetchone()[0]
    )
    assert body["notes"] == "first"


def test_one_malformed_record_does_not_cost_the_others(world, client, auth, db):
    good = report(world.visits["v2"], 1)
    bad = report(world.visits["v2"], 2, outcome="teleported")
    not_a_record = {"id": "nope"}
    outcomes = push(client, auth, [good, bad, not_a_record])["outcomes"]
    assert outcomes[0]["status"] in ("accepted", "flagged")
    assert (outcomes[1]["status"], outcomes[1]["reason"]) == ("rejected", "malformed")
    assert "body.outcome" in outcomes[1]["message"]
    assert outcomes[2]["reason"] == "malformed"
    assert db.execute("SELECT count(*) FROM sync_records").fetchone()[0] == 1
    # Each refusal is logged with the kind it was sent as, when that is a kind we know.
    refused = dict(db.execute("SELECT record_id, kind FROM sync_rejections").fetchall())
    assert refused == {bad["id"]: "visit_report", "nope": None}


def test_a_refused_record_of_an_unknown_kind_is_logged_with_no_kind(world, client, auth, db):
    odd = {**report(world.visits["v2"], 1), "kind": "selfie"}
    outcome = push(client, auth, [odd])["outcomes"][0]
    assert (outcome["status"], outcome["reason"]) == ("rejected", "malformed")
    assert db.execute("SELECT record_id, kind FROM sync_rejections").fetchall() == [
        (odd["id"], None)
    ]


@pytest.mark.parametrize("odd", ["just text", None, 42, [1, 2], True])
def test_a_record_that_is_not_an_object_is_rejected_on_its_own(world, client, auth, db, odd):
    good = report(world.visits["v2"], 1)
    outcomes = push(client, auth, [odd, good, odd])["outcomes"]
    assert len(outcomes) == 3
    assert outcomes[1]["status"] in ("accepted", "flagged")
    for outcome in (outcomes[0], outcomes[2]):
        assert (outcome["status"], outcome["reason"]) == ("rejected", "malformed")
        assert outcome["message"].startswith("_record:"), outcome["message"]
    stored = db.execute("SELECT id FROM sync_records").fetchall()
    assert [row[0] for row in stored] == [good["id"]]
    # Logged once as a refusal (the same value twice in one batch is one refusal).
    assert db.execute("SELECT count(*) FROM sync_rejections").fetchone()[0] == 1


def test_other_agents_visit_is_not_yours(world, client, auth, db):
    outcome = push(client, auth, [report(world.visits["v3"], 1)])["outcomes"][0]
    assert (outcome["status"], outcome["reason"]) == ("rejected", "not_yours")
    assert db.execute("SELECT count(*) FROM sync_records").fetchone()[0] == 0


def test_report_for_visit_reassigned_while_offline_is_kept_and_flagged(world, client, auth, db):
    v1 = world.visits["v1"]
    moved = client.patch(
        f"/api/v1/visits/{v1}",
        json={"agent_id": world.users["agent2"]},
        headers={**auth.headers("dispatcher"), "If-Match": "1"},
    )
    assert moved.status_code == 200
    outcome = push(client, auth, [credential(v1, 1), report(v1, 2)])["outcomes"][1]
    assert outcome["status"] == "flagged"
    assert "visit_reassigned" in {f["code"] for f in outcome["flags"]}
    assert (
        db.execute("SELECT count(*) FROM sync_records WHERE visit_id = ?", [v1]).fetchone()[0] == 2
    )


def test_compliance_flags_reach_the_outcome(world, client, auth):
    late = T0 - timedelta(hours=30)
    record = report(
        world.visits["v2"],
        1,
        third_party_present=True,
        debt_discussed_with_third_party=True,
        location={"lat": 31.3, "lon": 121.5, "accuracy_m": 10},
    )
    record["recorded_at"] = iso(late)
    body = {"device_time": iso(T0 + timedelta(minutes=9)), "records": [record]}
    outcome = client.post("/api/v1/sync/push", json=body, headers=auth.headers("agent1")).json[
        "outcomes"
    ][0]
    codes = {f["code"] for f in outcome["flags"]}
    assert outcome["status"] == "flagged"
    assert {
        "third_party_debt_discussed",
        "location_mismatch",
        "clock_skew",
        "late_sync",
        "credential_not_shown_first",
    } <= codes


def _upload(client, auth, data):
    sha = hashlib.sha256(data).hexdigest()
    response = client.put(
        f"/api/v1/attachments/{sha}",
        data=data,
        headers={**auth.headers("agent1"), "Content-Type": "image/png"},
    )
    assert response.status_code in (200, 201), response.json
    return sha


def _agreement(world, client, auth, upload=True):
    borrower_sig, agent_sig = PNG + b"b", PNG + b"a"
    if upload:
        _upload(client, auth, borrower_sig)
        _upload(client, auth, agent_sig)
    record_id = rid()
    body = {
        "agreement_id": record_id,
        "case_id": world.cases["C-0001"],
        "visit_id": world.visits["v1"],
        "currency": "CNY",
        "total_amount": "1200.50",
        "installments": [
            {"due_date": "2026-12-15", "amount": "600.25"},
            {"due_date": "2027-01-15", "amount": "600.25"},
        ],
        "template_id": "repayment-plan",
        "template_version": 3,
        "borrower_signature_sha256": hashlib.sha256(borrower_sig).hexdigest(),
        "agent_signature_sha256": hashlib.sha256(agent_sig).hexdigest(),
        "signed_at": iso(T0 - timedelta(minutes=25)),
        "signed_lat": "31.201",
        "signed_lon": "121.401",
    }
    body["content_hash"] = agreement_content_hash(body)
    return {
        "id": record_id,
        "kind": "agreement",
        "visit_id": world.visits["v1"],
        "device_seq": 9,
        "recorded_at": iso(T0 - timedelta(minutes=24)),
        "body": body,
    }


def test_agreement_gets_a_verifiable_receipt_and_is_immutable(world, client, auth, db):
    import sqlite3

    record = _agreement(world, client, auth)
    outcome = push(client, auth, [credential(world.visits["v1"], 1), record])["outcomes"][1]
    assert outcome["status"] in ("accepted", "flagged")
    receipt = outcome["receipt"]
    assert receipt["content_hash"] == record["body"]["content_hash"]
    public_key = client.get("/api/v1/auth/public-key").json["public_key_pem"]
    assert verify_receipt(public_key, receipt)
    forged = dict(receipt, content_hash="0" * 64)
    assert not verify_receipt(public_key, forged)
    replay = push(client, auth, [record])["outcomes"][0]
    assert replay["status"] == "duplicate" and replay["receipt"] == receipt
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("UPDATE sync_records SET body = '{}' WHERE id = ?", [record["id"]])
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("DELETE FROM agreement_receipts")


def test_tampered_agreement_is_rejected(world, client, auth, db):
    record = _agreement(world, client, auth)
    record["body"]["total_amount"] = "1300.50"
    record["body"]["installments"][0]["amount"] = "700.25"
    outcome = push(client, auth, [record])["outcomes"][0]
    assert (outcome["status"], outcome["reason"]) == ("rejected", "tampered")
    assert db.execute("SELECT count(*) FROM sync_records").fetchone()[0] == 0


def test_agreement_waits_for_its_signatures_then_a_second_one_competes(world, client, auth):
    record = _agreement(world, client, auth, upload=False)
    outcome = push(client, auth, [record])["outcomes"][0]
    assert (outcome["status"], outcome["reason"]) == ("retry", "attachment_missing")
    assert len(outcome["missing_blobs"]) == 2
    _agreement(world, client, auth, upload=True)  # uploads the same signature blobs
    assert push(client, auth, [record])["outcomes"][0]["status"] in ("accepted", "flagged")
    second = _agreement(world, client, auth)
    outcome = push(client, auth, [second])["outcomes"][0]
    assert outcome["status"] == "flagged"
    assert "competing_agreement" in {f["code"] for f in outcome["flags"]}


def test_borrower_identity_is_compared_and_the_typed_characters_are_not_kept(
    world, client, auth, db
):
    national_id = next(
        db.query(
            "SELECT b.national_id FROM borrowers b JOIN cases c ON "
            "c.borrower_id = b.id WHERE c.id = ?",
            [world.cases["C-0001"]],
        )
    )["national_id"]
    good = {
        "id": rid(),
        "kind": "id_confirmation",
        "visit_id": world.visits["v1"],
        "device_seq": 1,
        "recorded_at": iso(T0),
        "body": {"confirmation_kind": "borrower_identity", "id_last6": national_id[-6:]},
    }
    typo = "QQ7QQ7"
    bad = {
        **good,
        "id": rid(),
        "body": {"confirmation_kind": "borrower_identity", "id_last6": typo},
    }
    outcomes = push(client, auth, [good, bad])["outcomes"]
    assert [o["id_verification"] for o in outcomes] == ["match", "mismatch"]
    assert "id_mismatch" in {f["code"] for f in outcomes[1]["flags"]}
    dump = "\n".join(db.conn.iterdump())
    assert typo not in dump and "id_last6" not in dump
    pulled = client.get("/api/v1/sync/pull", headers=auth.headers("agent1")).json
    verdicts = {o["record_id"]: o["id_verification"] for o in pulled["outcomes"]}
    assert verdicts == {good["id"]: "match", bad["id"]: "mismatch"}
    assert national_id not in json.dumps(pulled)


def test_pull_delivers_cards_logs_them_and_answers_the_same_cursor_the_same(
    world, client, auth, db
):
    headers = auth.headers("agent1")
    first = client.get("/api/v1/sync/pull?limit=1", headers=headers).json
    assert [u["id"] for u in first["upserts"]] == [world.visits["v1"]]
    assert first["has_more"] is True
    assert first["upserts"][0]["borrower"]["expires_at"]
    ledger = db.execute(
        "SELECT count(*) FROM exposure_ledger WHERE device_id = 'phone-agent1'"
    ).fetchone()[0]
    assert ledger == 1
    # the response was lost: the same (absent) cursor gives the same page again
    again = client.get("/api/v1/sync/pull?limit=1", headers=headers).json
    assert [u["id"] for u in again["upserts"]] == [world.visits["v1"]]
    second = client.get(f"/api/v1/sync/pull?limit=1&cursor={again['cursor']}", headers=headers).json
    assert [u["id"] for u in second["upserts"]] == [world.visits["v2"]]
    assert second["has_more"] is False
    third = client.get(f"/api/v1/sync/pull?cursor={second['cursor']}", headers=headers).json
    assert third["upserts"] == [] and third["purges"] == []


def test_reassignment_orders_a_purge_that_is_acknowledged(world, client, auth, clock):
    headers = auth.headers("agent1")
    cursor = client.get("/api/v1/sync/pull", headers=headers).json["cursor"]
    v2 = world.visits["v2"]
    client.patch(
        f"/api/v1/visits/{v2}",
        json={"agent_id": world.users["agent2"]},
        headers={**auth.headers("dispatcher"), "If-Match": "1"},
    )
    pulled = client.get(f"/api/v1/sync/pull?cursor={cursor}", headers=headers).json
    assert pulled["purges"] == [
        {"visit_id": v2, "reason": "reassigned", "ordered_at": pulled["purges"][0]["ordered_at"]}
    ]
    ack = client.post("/api/v1/sync/purge-acks", json={"visit_ids": [v2]}, headers=headers)
    assert ack.json == {"confirmed": [v2]}
    after = client.get(f"/api/v1/sync/pull?cursor={pulled['cursor']}", headers=headers).json
    assert after["purges"] == []


def test_unacknowledged_purge_past_deadline_blocks_new_cards(world, client, auth, clock):
    headers = auth.headers("agent1")
    cursor = client.get("/api/v1/sync/pull", headers=headers).json["cursor"]
    client.post(
        f"/api/v1/visits/{world.visits['v2']}/cancel",
        json={"version": 1},
        headers=auth.headers("dispatcher"),
    )
    cursor = client.get(f"/api/v1/sync/pull?cursor={cursor}", headers=headers).json["cursor"]
    new_visit = client.post(
        "/api/v1/visits",
        headers=auth.headers("dispatcher"),
        json={
            "case_id": world.cases["C-0003"],
            "agent_id": world.users["agent1"],
            "visit_date": "2026-11-24",
            "notice": {"kind": "sms"},
        },
    ).json["visit"]["id"]
    clock.advance(hours=2, minutes=1)
    auth.sessions.pop("agent1")
    headers = auth.headers("agent1")
    blocked = client.get(f"/api/v1/sync/pull?cursor={cursor}", headers=headers).json
    assert blocked["blocked"] == {
        "reason": "purge_unacknowledged",
        "visit_ids": [world.visits["v2"]],
    }
    assert blocked["upserts"] == []
    client.post(
        "/api/v1/sync/purge-acks", json={"visit_ids": [world.visits["v2"]]}, headers=headers
    )
    freed = client.get(f"/api/v1/sync/pull?cursor={cursor}", headers=headers).json
    assert freed["blocked"] is None
    assert [u["id"] for u in freed["upserts"]] == [new_visit]


def test_bad_cursor_and_oversized_batch_are_clear_4xx(world, client, auth):
    headers = auth.headers("agent1")
    bad = client.get("/api/v1/sync/pull?cursor=garbage", headers=headers)
    assert bad.status_code == 422 and bad.json["error"]["code"] == "invalid_cursor"
    other = client.get("/api/v1/sync/pull", headers=auth.headers("agent2")).json["cursor"]
    stolen = client.get(f"/api/v1/sync/pull?cursor={other}", headers=headers)
    assert stolen.json["error"]["code"] == "invalid_cursor"
    big = [report(world.visits["v2"], n) for n in range(101)]
    response = client.post(
        "/api/v1/sync/push", json={"device_time": iso(T0), "records": big}, headers=headers
    )
    assert response.status_code == 413
    assert response.json["error"]["code"] == "batch_too_large"


def test_sync_health_and_records_for_dispatchers(world, client, auth):
    push(
        client,
        auth,
        [report(world.visits["v2"], 1), report(world.visits["v3"], 2)],
        queue={"pending": 2, "oldest_recorded_at": iso(T0 - timedelta(hours=1))},
    )
    health = client.get("/api/v1/sync/health", headers=auth.headers("dispatcher")).json
    phone = next(h for h in health if h["device_id"] == "phone-agent1")
    assert phone["queued_count"] == 2 and phone["oldest_queued_age_s"] == 3600
    assert phone["rejected_records"] == 1 and phone["state"] == "behind"
    records = client.get(
        f"/api/v1/records?visit_id={world.visits['v2']}", headers=auth.headers("dispatcher")
    ).json["items"]
    assert len(records) == 1 and records[0]["kind"] == "visit_report"


def test_cli_verifies_a_receipt_and_refuses_a_changed_one(world, client, auth, app, tmp_path):
    record = _agreement(world, client, auth)
    receipt = push(client, auth, [credential(world.visits["v1"], 1), record])["outcomes"][1][
        "receipt"
    ]
    good = tmp_path / "receipt.json"
    good.write_text(json.dumps(receipt))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["verify-receipt", str(good)])
    assert result.exit_code == 0 and "valid: agreement" in result.output
    bad = tmp_path / "changed.json"
    bad.write_text(json.dumps(dict(receipt, received_at="2026-11-24T02:00:01Z")))
    result = runner.invoke(args=["verify-receipt", str(bad)])
    assert result.exit_code == 1 and "INVALID" in result.output


def test_overdue_purge_also_closes_the_day_view(world, client, auth, clock):
    headers = auth.headers("agent1")
    client.get("/api/v1/sync/pull", headers=headers)
    client.post(
        f"/api/v1/visits/{world.visits['v2']}/cancel",
        json={"version": 1},
        headers=auth.headers("dispatcher"),
    )
    client.get("/api/v1/sync/pull", headers=headers)  # the purge is ordered here
    clock.advance(hours=2, minutes=1)
    auth.sessions.pop("agent1")
    headers = auth.headers("agent1")
    refused = client.get("/api/v1/me/day", headers=headers)
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "purge_unacknowledged"
    assert refused.json["error"]["details"]["visit_ids"] == [world.visits["v2"]]
    client.post(
        "/api/v1/sync/purge-acks", json={"visit_ids": [world.visits["v2"]]}, headers=headers
    )
    assert client.get("/api/v1/me/day", headers=headers).status_code == 200


def test_replay_answers_match_whether_or_not_the_bytes_are_identical(world, client, auth, db):
    record = report(world.visits["v2"], 1, notes="same facts")
    first = push(client, auth, [record])["outcomes"][0]
    exact = push(client, auth, [record])["outcomes"][0]
    reformatted = json.loads(json.dumps(record))
    reformatted["id"] = record["id"].upper()  # same UUID, other spelling: validated again
    reformatted["body"]["location"]["accuracy_m"] = 15.0
    slow = push(client, auth, [reformatted])["outcomes"][0]
    assert slow["record_id"] == reformatted["id"]  # echoed exactly as sent
    assert exact == dict(slow, record_id=record["id"])
    assert exact["status"] == "duplicate" and exact["original_status"] == first["status"]
    assert exact["flags"] == first["flags"]
    assert db.execute("SELECT count(*) FROM sync_records").fetchone()[0] == 1


def test_record_ids_are_echoed_exactly_as_sent(world, client, auth, db):
    """iOS spells UUIDs in upper case; a client matching outcomes by string must find its
    own id in every answer, while the store keys the record by the canonical form."""
    record = report(world.visits["v2"], 1)
    record["id"] = record["id"].upper()
    pushed = push(client, auth, [record])["outcomes"][0]
    assert pushed["record_id"] == record["id"] and pushed["status"] in ("accepted", "flagged")
    assert push(client, auth, [record])["outcomes"][0]["record_id"] == record["id"]
    pulled = client.get("/api/v1/sync/pull", headers=auth.headers("agent1")).json
    assert [o["record_id"] for o in pulled["outcomes"]] == [record["id"]]
    stored = [r[0] for r in db.execute("SELECT id FROM sync_records")]
    assert stored == [record["id"].lower()]


def test_a_late_replay_does_not_roll_back_the_device_health(world, client, auth):
    old = {
        "device_time": iso(T0 - timedelta(minutes=30)),
        "records": [],
        "queue": {"pending": 9, "oldest_recorded_at": iso(T0 - timedelta(hours=3))},
    }
    new = {"device_time": iso(T0), "records": [], "queue": {"pending": 0}}
    headers = auth.headers("agent1")
    assert client.post("/api/v1/sync/push", json=new, headers=headers).status_code == 200
    assert client.post("/api/v1/sync/push", json=old, headers=headers).status_code == 200
    health = client.get("/api/v1/sync/health", headers=auth.headers("dispatcher")).json
    phone = next(h for h in health if h["device_id"] == "phone-agent1")
    assert phone["queued_count"] == 0 and phone["clock_skew_s"] == 0
