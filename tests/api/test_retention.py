"""Retention: per-kind clocks, legal holds, signed certificates, a chain that stays verifiable."""

from __future__ import annotations

import json
import uuid

import pytest

from server.clock import to_iso
from server.domain.retention import certificate_is_signed
from server.storage import ledger as ledger_rows
from server.storage.connection import transaction
from tests.conftest import TODAY, case_row

API = "/api/v1/audit"


@pytest.fixture
def served(world, client, auth):
    """Eight ledger entries at T0: two agents' days and the dispatcher's list."""
    for agent in ("agent1", "agent2"):
        response = client.get(f"/api/v1/me/day?date={TODAY}", headers=auth.headers(agent))
        assert response.status_code == 200
    client.get("/api/v1/visits", headers=auth.headers("dispatcher"))
    return world


def _borrower(db, case_id):
    return db.execute("SELECT borrower_id FROM cases WHERE id = ?", [case_id]).fetchone()[0]


def _expose(db, borrower_ids, at):
    """Ledger entries written now-ish by the service layer's own append."""
    entries = [
        {
            "occurred_at": to_iso(at),
            "user_id": 1,
            "role": "dispatcher",
            "device_id": None,
            "borrower_id": borrower_id,
            "case_id": None,
            "visit_id": None,
            "fields": '["display_name"]',
            "purpose": "planning",
            "endpoint": "GET /api/v1/visits",
            "request_id": uuid.uuid4().hex,
            "outcome": "served",
        }
        for borrower_id in borrower_ids
    ]
    with transaction(db):
        ledger_rows.append(db, entries)


def _record(db, world, visit, at, kind="visit_report", case=None):
    record_id = str(uuid.uuid4())
    case_id = world.cases[case] if case else _case_of_visit(db, world.visits[visit])
    db["sync_records"].insert(
        {
            "id": record_id,
            "kind": kind,
            "agent_id": world.users["agent1"],
            "device_id": "phone-agent1",
            "visit_id": world.visits[visit],
            "case_id": case_id,
            "device_seq": 1,
            "recorded_at": to_iso(at),
            "received_at": to_iso(at),
            "digest": "d" * 64,
            "status": "stored",
            "outcome": "{}",
            "body": "{}",
        }
    )
    if kind == "agreement":
        db["agreement_receipts"].insert(
            {
                "agreement_id": record_id,
                "content_hash": "c" * 64,
                "received_at": to_iso(at),
                "key_id": "0" * 16,
                "signature": "s",
            }
        )
    return record_id


def _case_of_visit(db, visit_id):
    return db.execute("SELECT case_id FROM visits WHERE id = ?", [visit_id]).fetchone()[0]


def _hold(db, world, case):
    db.execute("UPDATE cases SET legal_hold = 1 WHERE id = ?", [world.cases[case]])


def _import(client, auth, rows):
    response = client.post(
        "/api/v1/cases/import",
        data="\n".join(json.dumps(r) for r in rows),
        headers={**auth.headers("dispatcher"), "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200 and not response.json["rejected"], response.json


def _purge(app, *args, exit_code=0):
    result = app.test_cli_runner().invoke(args=["purge", *args])
    assert result.exit_code == exit_code, result.output
    return result.output


def _certificates(client, auth, kind=None):
    url = f"{API}/purge-certificates?limit=500" + (f"&kind={kind}" if kind else "")
    response = client.get(url, headers=auth.headers("privacy"))
    assert response.status_code == 200
    return response.json["items"]


def _verify(client, auth):
    return client.get(f"{API}/verify", headers=auth.headers("privacy")).json


def _check(client, auth, document):
    response = client.post(
        f"{API}/verify-checkpoint", json=document, headers=auth.headers("privacy")
    )
    assert response.status_code == 200
    return response.json


def _seqs(db):
    return [r[0] for r in db.execute("SELECT seq FROM exposure_ledger ORDER BY seq")]


def _dump(db):
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: sorted(map(repr, db.execute(f"SELECT * FROM [{t}]").fetchall())) for t in tables}


def test_old_ledger_entries_go_and_the_rest_still_verifies(served, app, client, auth, db, clock):
    old_hash = ledger_rows.hash_at(db, 8)
    clock.advance(days=200)
    _expose(db, [_borrower(db, served.cases["C-0001"])] * 2, clock())
    clock.advance(days=166)
    before = client.post(f"{API}/checkpoints", json={}, headers=auth.headers("privacy")).json
    assert before["head_seq"] == 10

    output = _purge(app)

    assert "exposure_ledger: removed 8" in output
    assert _seqs(db) == [9, 10]
    anchor = ledger_rows.anchor(db)
    assert (anchor["start_seq"], anchor["start_hash"]) == (8, old_hash)
    [certificate] = _certificates(client, auth, "exposure_ledger")
    assert certificate["removed_count"] == 8
    details = certificate["details"]
    assert (details["from_seq"], details["to_seq"], details["entries"]) == (1, 8, 8)
    assert details["anchor_checkpoint_id"] == anchor["checkpoint_id"]
    anchor_checkpoint = ledger_rows.get_checkpoint(db, anchor["checkpoint_id"])
    assert (anchor_checkpoint["head_seq"], anchor_checkpoint["head_hash"]) == (8, old_hash)

    report = _verify(client, auth)
    assert report["intact"] is True and report["entries_checked"] == 2 and report["head_seq"] == 10
    assert _check(client, auth, before)["intact"] is True  # taken before, still holds

    _expose(db, [_borrower(db, served.cases["C-0002"])], clock())
    assert ledger_rows.hash_at(db, 11) and _seqs(db) == [9, 10, 11]
    after = client.post(f"{API}/checkpoints", json={}, headers=auth.headers("privacy")).json
    report = _check(client, auth, after)
    assert report["intact"] is True and report["anchor_seq"] == 8
    assert report["entries_checked"] == 3 and report["ledger_head_seq"] == 11


def test_a_fully_purged_ledger_continues_from_its_anchor(served, app, client, auth, db, clock):
    last_hash = ledger_rows.hash_at(db, 8)
    clock.advance(days=400)
    _purge(app)
    assert _seqs(db) == []
    assert ledger_rows.head(db) == (8, last_hash)
    _expose(db, [_borrower(db, served.cases["C-0001"])], clock())
    entry = next(db.query("SELECT seq, prev_hash FROM exposure_ledger"))
    assert entry == {"seq": 9, "prev_hash": last_hash}
    report = _verify(client, auth)
    assert report["intact"] is True and report["entries_checked"] == 1


def test_a_large_backlog_goes_over_several_runs(served, make_app, client, auth, db, clock):
    capped = make_app(PURGE_MAX_LEDGER_ENTRIES=3)
    clock.advance(days=366)
    assert "run purge again" in _purge(capped)
    assert _seqs(db) == [4, 5, 6, 7, 8]
    assert _verify(client, auth)["intact"] is True
    _purge(capped)
    _purge(capped)
    assert _seqs(db) == []
    certificates = _certificates(client, auth, "exposure_ledger")
    assert [c["removed_count"] for c in certificates] == [3, 3, 2]
    assert [c["details"]["entries_left_for_next_run"] for c in certificates] == [5, 2, 0]
    assert _verify(client, auth)["intact"] is True


def test_legal_hold_stops_the_ledger_cut_before_the_held_borrower(
    served, app, client, auth, db, clock
):
    held_borrower = _borrower(db, served.cases["C-0003"])
    first_held = db.execute(
        "SELECT min(seq) FROM exposure_ledger WHERE borrower_id = ?", [held_borrower]
    ).fetchone()[0]
    assert 1 < first_held <= 8
    _hold(db, served, "C-0003")
    clock.advance(days=366)

    _purge(app)

    assert _seqs(db) == list(range(first_held, 9))
    [certificate] = _certificates(client, auth, "exposure_ledger")
    assert certificate["removed_count"] == first_held - 1
    assert certificate["details"]["held_back_from_seq"] == first_held
    assert certificate["details"]["entries_held_back"] == 8 - (first_held - 1)
    assert _verify(client, auth)["intact"] is True


def test_a_tampered_ledger_prefix_is_kept_as_evidence(served, app, client, auth, db, clock):
    db.execute("DROP TRIGGER exposure_ledger_no_update")
    db.execute("UPDATE exposure_ledger SET purpose = 'curiosity' WHERE seq = 2")
    clock.advance(days=366)
    output = _purge(app, exit_code=1)
    assert "not intact" in output
    assert _seqs(db) == list(range(1, 9))
    [certificate] = _certificates(client, auth, "exposure_ledger")
    assert certificate["removed_count"] == 0 and "skipped" in certificate["details"]


def test_evidence_goes_three_years_after_the_last_activity(served, app, client, auth, db, clock):
    t0 = clock()
    _record(db, served, "v1", t0)
    agreement = _record(db, served, "v1", t0, kind="agreement")
    held = _record(db, served, "v2", t0)
    for case in ("C-0001", "C-0002"):  # a call on the log of each: evidence on the same clock
        logged = client.post(
            f"/api/v1/cases/{served.cases[case]}/contacts",
            json={"channel": "phone_call", "occurred_at": to_iso(t0), "outcome": "no_answer"},
            headers=auth.headers("dispatcher"),
        )
        assert logged.status_code == 201, logged.json
        case_id = served.cases[case]
        db["promises"].insert(
            {
                "source": "letter",
                "source_id": f"reply-{case}",
                "case_id": case_id,
                "amount": "50.00",
                "due_date": "2026-12-01",
                "made_at": to_iso(t0),
            }
        )
        db["payments"].insert(
            {
                "id": f"PAY-{case}",
                "case_id": case_id,
                "amount": "50.00",
                "currency": "CNY",
                "paid_at": to_iso(t0),
                "source": "bank_transfer",
                "content_hash": "x",
                "imported_at": to_iso(t0),
            }
        )
    _hold(db, served, "C-0002")
    kept = {held}
    kept.add(_record(db, served, "v3", t0))  # a later record on the case (below)
    kept.add(_record(db, served, "v4", t0))  # its visit changed later (below)
    kept.add(_record(db, served, "v4", t0, case="C-0005"))  # the case changed later (below)
    clock.advance(days=1000)
    kept.add(_record(db, served, "v3", clock()))
    db.execute(
        "UPDATE visits SET updated_at = ? WHERE id = ?", [to_iso(clock()), served.visits["v4"]]
    )
    db.execute(
        "UPDATE cases SET updated_at = ? WHERE id = ?", [to_iso(clock()), served.cases["C-0005"]]
    )
    _purge(app)
    assert db.execute("SELECT count(*) FROM sync_records").fetchone()[0] == 7

    clock.advance(days=96)  # 1096 days after T0, 96 after the latest activity
    _purge(app)

    assert {r[0] for r in db.execute("SELECT id FROM sync_records")} == kept
    assert agreement not in kept
    assert db.execute("SELECT agreement_id FROM agreement_receipts").fetchall() == []
    assert [r[0] for r in db.execute("SELECT case_id FROM contacts")] == [served.cases["C-0002"]]
    assert db.execute("SELECT count(*) FROM contact_sources").fetchone()[0] == 1
    certificates = _certificates(client, auth, "compliance_evidence")
    assert [c["removed_count"] for c in certificates] == [0, 6]
    assert certificates[1]["details"] == {
        "cases": 1,
        "cases_held": 1,
        "sync_records": 2,
        "agreement_receipts": 1,
        "contacts": 1,
        "promises": 1,
        "payments": 1,
    }
    # What was promised and paid on the purged case went with it; the held case kept its own.
    for table in ("promises", "payments"):
        assert [r[0] for r in db.execute(f"SELECT case_id FROM {table}")] == [
            served.cases["C-0002"]
        ]


def test_personal_data_goes_after_every_case_closed(served, app, client, auth, db, clock):
    _import(
        client,
        auth,
        [
            case_row(1, status="closed"),
            case_row(2, status="closed"),
            case_row(4, status="closed"),
            # B-0004 still owes on a second, open case.
            {**case_row(4), "case_external_id": "C-0006"},
        ],
    )
    _hold(db, served, "C-0002")
    before = {r["external_id"]: r for r in db.query("SELECT * FROM borrowers")}
    clock.advance(days=179)
    _purge(app)
    assert {r["external_id"]: r for r in db.query("SELECT * FROM borrowers")} == before

    clock.advance(days=2)
    _purge(app)
    _purge(app)  # already purged borrowers are not counted twice

    after = {r["external_id"]: r for r in db.query("SELECT * FROM borrowers")}
    purged = after.pop("B-0001")
    assert purged["id"] == before["B-0001"]["id"]
    assert {k: purged[k] for k in purged if k not in ("id", "external_id", "time_zone")} == {
        "full_name": "[purged]",
        "national_id": None,
        "phones": "[]",
        "home_address": None,
        "home_lat": None,
        "home_lon": None,
        "work_address": None,
        "employer": None,
        "date_of_birth": None,
        "contacts": "[]",
        "income": None,
        "created_at": before["B-0001"]["created_at"],
        "updated_at": to_iso(clock()),
    }
    assert after == {k: v for k, v in before.items() if k != "B-0001"}
    certificates = _certificates(client, auth, "personal_data")
    assert [c["removed_count"] for c in certificates] == [0, 1, 0]
    assert certificates[1]["details"]["borrowers_held"] == 1
    text = json.dumps(_certificates(client, auth))
    for value in ("Borrower 1", "1 Test Road", "13812340001", before["B-0001"]["national_id"]):
        assert value not in text


def test_certificates_are_signed_against_a_checkpoint(served, app, client, auth, db, clock):
    clock.advance(days=366)
    _expose(db, [_borrower(db, served.cases["C-0001"])], clock())
    _purge(app)
    certificates = _certificates(client, auth)
    assert [c["kind"] for c in certificates] == [
        "exposure_ledger",
        "compliance_evidence",
        "personal_data",
        "attachments",
        "free_text_notes",
    ]
    public_key = app.extensions["doorstep"].keys.public_key
    for certificate in certificates:
        assert certificate_is_signed(public_key, certificate)
        assert not certificate_is_signed(
            public_key, {**certificate, "removed_count": certificate["removed_count"] + 1}
        )
        assert certificate["rule"] and certificate["cutoff"] < certificate["created_at"]
    assert len({c["checkpoint_id"] for c in certificates}) == 1
    document = client.get(
        f"{API}/checkpoints/{certificates[0]['checkpoint_id']}", headers=auth.headers("privacy")
    ).json
    assert document["reason"] == "retention purge" and document["head_seq"] == 9
    assert certificates[0]["details"]["anchor_checkpoint_id"] != document["id"]
    assert _check(client, auth, document)["intact"] is True
    assert db.execute(
        "SELECT count(*) FROM staff_audit WHERE action = 'retention_purge'"
    ).fetchone() == (1,)


def test_dry_run_lists_what_would_go_and_changes_nothing(served, app, client, auth, db, clock):
    _record(db, served, "v1", clock())
    _import(client, auth, [case_row(1, status="closed")])
    clock.advance(days=1100)
    dump = _dump(db)

    output = _purge(app, "--dry-run")

    assert _dump(db) == dump
    assert "exposure_ledger: would remove 8" in output
    assert "compliance_evidence: would remove 1" in output
    assert "personal_data: would remove 1" in output
    assert f"case ids: {served.cases['C-0001']}" in output
    assert f"borrower ids: {_borrower(db, served.cases['C-0001'])}" in output
    early = _purge(app, "--dry-run", "--now", "2027-01-01T00:00:00Z")
    assert "exposure_ledger: would remove 0" in early and "personal_data: would remove 0" in early
    ahead = _purge(app, "--dry-run", "--now", "2031-01-01T00:00:00Z")
    assert "compliance_evidence: would remove 1" in ahead
    _purge(app, "--now", "2031-01-01T00:00:00Z", exit_code=2)  # only a dry run may look ahead
    assert _dump(db) == dump
    _purge(app)
    assert _dump(db) != dump


def test_an_anchor_without_a_signed_checkpoint_is_reported(served, app, client, auth, db, clock):
    clock.advance(days=366)
    _expose(db, [_borrower(db, served.cases["C-0001"])], clock())
    _purge(app)
    document = client.post(f"{API}/checkpoints", json={}, headers=auth.headers("privacy")).json
    # Someone moves the start of the chain to hide entries: the anchor no longer matches
    # the signed checkpoint it names.
    db.execute(
        "UPDATE ledger_anchor SET start_seq = 9, start_hash = ?", [ledger_rows.hash_at(db, 9)]
    )
    report = _verify(client, auth)
    assert report["intact"] is False and "anchor" in report["problem"]
    assert _check(client, auth, document)["problem"] == "anchor"


def test_purge_certificates_are_for_privacy_and_admin(served, client, auth):
    for user, status in (("privacy", 200), ("admin", 200), ("agent1", 403), ("dispatcher", 403)):
        response = client.get(f"{API}/purge-certificates", headers=auth.headers(user))
        assert response.status_code == status, user
