"""Retention of attachments and free-text notes: blobs follow the records that reference
them, unreferenced ones expire, notes go at the personal-data clock, a certificate each."""

from __future__ import annotations

import json
import sqlite3
import uuid

import pytest

from server.clock import to_iso
from server.domain.retention import certificate_is_signed
from server.storage.engine import dialect
from tests.api.test_attachments import put_blob, send_chunk, sha, start_upload
from tests.conftest import case_row

API = "/api/v1"
PHOTO = b"\xff\xd8\xff" + b"photo of the door" * 50
SHARED = b"\xff\xd8\xff" + b"signature image" * 50


def _push(client, headers, visit_id, attachments=(), notes=None, record_id=None):
    record = {
        "id": record_id or str(uuid.uuid4()),
        "kind": "visit_report",
        "visit_id": visit_id,
        "device_seq": 1,
        "recorded_at": "2026-11-24T01:50:00Z",
        "body": {
            "arrived_at": "2026-11-24T01:30:00Z",
            "outcome": "not_home",
            "location": {"lat": 31.201, "lon": 121.401, "accuracy_m": 10},
            "attachments": list(attachments),
            "notes": notes,
        },
    }
    response = client.post(
        f"{API}/sync/push",
        json={"device_time": "2026-11-24T02:00:00Z", "records": [record]},
        headers=headers,
    )
    assert response.status_code == 200, response.json
    outcome = response.json["outcomes"][0]
    assert outcome["status"] in ("accepted", "flagged", "duplicate"), outcome
    return record, outcome


def _purge(app, *args, exit_code=0):
    result = app.test_cli_runner().invoke(args=["purge", *args])
    assert result.exit_code == exit_code, result.output
    return result.output


def _certificates(client, auth, kind):
    response = client.get(
        f"{API}/audit/purge-certificates?limit=500&kind={kind}", headers=auth.headers("privacy")
    )
    assert response.status_code == 200, response.json
    return response.json["items"]


def _hashes(db, table="blobs"):
    return {r[0] for r in db.execute(f"SELECT sha256 FROM {table}")}


def _hold(db, case_id, on=True):
    db.execute("UPDATE cases SET legal_hold = ? WHERE id = ?", [int(on), case_id])


def _dump(db):
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: sorted(map(repr, db.execute(f"SELECT * FROM [{t}]").fetchall())) for t in tables}


def _close(client, auth, *numbers):
    rows = [case_row(n, status="closed") for n in numbers]
    response = client.post(
        f"{API}/cases/import",
        data="\n".join(json.dumps(r) for r in rows),
        headers={**auth.headers("dispatcher"), "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200 and not response.json["rejected"], response.json


def _verify_intact(client, auth):
    report = client.get(f"{API}/audit/verify", headers=auth.headers("privacy")).json
    assert report["intact"] is True, report


def test_a_photo_goes_with_the_last_record_that_references_it_and_stays_on_hold(
    world, app, client, auth, db, clock
):
    agent = auth.headers("agent1")
    for data in (PHOTO, SHARED):
        assert put_blob(client, agent, data).status_code == 201
    _push(client, agent, world.visits["v1"], [sha(PHOTO), sha(SHARED)])
    _push(client, agent, world.visits["v2"], [sha(SHARED)])
    assert {
        tuple(r) for r in db.execute("SELECT sha256, count(*) FROM blob_references GROUP BY 1")
    } == {
        (sha(PHOTO), 1),
        (sha(SHARED), 2),
    }
    # A blob a stored record references cannot be deleted by hand.
    with pytest.raises(sqlite3.DatabaseError, match="references this blob"):
        db.execute("DELETE FROM blobs WHERE sha256 = ?", [sha(PHOTO)])
    _hold(db, world.cases["C-0002"])

    clock.advance(days=1100)  # past the evidence clock of both cases
    _purge(app)

    # C-0001's record went and took the photo; the shared image stays with the held record.
    assert _hashes(db) == {sha(SHARED)}
    assert _hashes(db, "blob_owners") == {sha(SHARED)}
    assert _hashes(db, "blob_references") == {sha(SHARED)}
    [first] = _certificates(client, auth, "attachments")
    assert first["removed_count"] == 1
    assert first["details"]["blobs_with_their_records"] == 1
    assert first["details"]["blob_bytes"] == len(PHOTO)
    assert certificate_is_signed(app.extensions["doorstep"].keys.public_key, first)

    _hold(db, world.cases["C-0002"], on=False)
    _purge(app)  # the hold lifted, the last record and its image go in the same run

    assert _hashes(db) == set() and _hashes(db, "blob_owners") == set()
    assert db.execute("SELECT count(*) FROM sync_records").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM blob_references").fetchone() == (0,)
    second = _certificates(client, auth, "attachments")[1]
    assert second["removed_count"] == 1 and second["details"]["blob_bytes"] == len(SHARED)
    _verify_intact(client, auth)


def test_unreferenced_blobs_and_abandoned_uploads_expire(world, app, client, auth, db, clock):
    agent = auth.headers("agent1")
    kept, loose = PHOTO, b"\xff\xd8\xff" + b"never referenced" * 40
    for data in (kept, loose):
        assert put_blob(client, agent, data).status_code == 201
    _push(client, agent, world.visits["v1"], [sha(kept)])
    big = b"\xff\xd8\xff" + bytes(range(256)) * 20
    upload = start_upload(client, agent, big).json
    assert send_chunk(client, agent, upload["upload_id"], 0, big[:1000]).status_code == 200
    # A blob whose referencing record an earlier version's purge removed (no reference left).
    orphan = "e" * 64
    db["blobs"].insert(
        {
            "sha256": orphan,
            "size": 3,
            "content_type": "image/png",
            "data": b"old",
            "created_at": "2026-01-01T00:00:00.000000Z",
            "uploaded_by": world.users["agent1"],
        }
    )
    db["blob_owners"].insert(
        {
            "sha256": orphan,
            "user_id": world.users["agent1"],
            "device_id": None,
            "content_type": "image/png",
            "created_at": "2026-01-01T00:00:00.000000Z",
            "referenced_at": "2026-01-02T00:00:00.000000Z",
        }
    )

    clock.advance(days=6)
    _purge(app)
    assert _hashes(db) == {sha(kept), sha(loose)}  # only the orphan was due
    assert db.execute("SELECT count(*) FROM blob_chunks").fetchone() == (1,)

    clock.advance(days=2)  # past BLOB_UNREFERENCED_TTL_S and UPLOAD_IDLE_TTL_S (7 days)
    dump = _dump(db)
    dry = _purge(app, "--dry-run")
    assert _dump(db) == dump
    assert "attachments: would remove 2" in dry
    assert f"blob sha256s: {sha(loose)}" in dry and f"upload ids: {upload['upload_id']}" in dry
    _purge(app)

    assert _hashes(db) == {sha(kept)}
    assert db.execute("SELECT count(*) FROM blob_uploads").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM blob_chunks").fetchone() == (0,)
    first, second = _certificates(client, auth, "attachments")
    assert first["removed_count"] == 1 and first["details"]["blobs_unreferenced"] == 1
    assert second["removed_count"] == 2
    assert {k: second["details"][k] for k in ("blobs_unreferenced", "uploads_abandoned")} == {
        "blobs_unreferenced": 1,
        "uploads_abandoned": 1,
    }
    assert second["details"]["upload_chunks"] == 1


def _notes(db, world, visit):
    return db.execute(
        "SELECT notes, notice_note, cancel_reason FROM visits WHERE id = ?", [world.visits[visit]]
    ).fetchone()


def test_notes_are_redacted_at_the_personal_clock_and_records_still_verify(
    world, app, client, auth, db, clock
):
    agent = auth.headers("agent1")
    cancelled = client.post(
        f"{API}/visits/{world.visits['v1']}/cancel",
        json={"version": 1, "reason": "Borrower in hospital this week"},
        headers=auth.headers("dispatcher"),
    )
    assert cancelled.status_code == 200, cancelled.json
    report, _ = _push(client, agent, world.visits["v1"], notes="Wife said he works nights")
    held, _ = _push(client, agent, world.visits["v2"], notes="Neighbour is his cousin")
    borrower = db.execute(
        "SELECT borrower_id FROM cases WHERE id = ?", [world.cases["C-0001"]]
    ).fetchone()[0]
    response = client.post(
        f"{API}/borrowers/{borrower}/requests",
        json={
            "kind": "do_not_contact",
            "channel": "sms",
            "source": "phone",
            "taken_at": "2026-11-23T02:00:00Z",
            "note": "Asked us to stop texting his daughter's phone",
        },
        headers=auth.headers("dispatcher"),
    )
    assert response.status_code == 201, response.json
    before = next(db.query("SELECT * FROM sync_records WHERE id = ?", [report["id"]]))
    _close(client, auth, 1, 2)
    _hold(db, world.cases["C-0002"])
    assert _notes(db, world, "v1")[0] == "notes for v1"

    clock.advance(days=181)
    _purge(app)

    after = next(db.query("SELECT * FROM sync_records WHERE id = ?", [report["id"]]))
    body, original = json.loads(after["body"]), json.loads(before["body"])
    assert body == {**original, "notes": "[redacted]"}
    assert {k: v for k, v in after.items() if k != "body"} == {
        k: v for k, v in before.items() if k != "body"
    }
    [certificate] = _certificates(client, auth, "free_text_notes")
    assert list(db.query("SELECT * FROM record_redactions")) == [
        {
            "record_id": report["id"],
            "field": "body.notes",
            "redacted_at": to_iso(clock()),
            "certificate_id": certificate["id"],
        }
    ]
    assert _notes(db, world, "v1") == (None, None, None)
    assert db.execute(
        "SELECT note FROM borrower_requests WHERE borrower_id = ?", [borrower]
    ).fetchall() == [(None,)]
    assert db.execute(
        "SELECT count(*) FROM case_history WHERE case_id = ? AND reason IS NOT NULL",
        [world.cases["C-0001"]],
    ).fetchone() == (0,)
    # The held borrower keeps everything; the other open cases keep their notes.
    held_body = json.loads(
        db.execute("SELECT body FROM sync_records WHERE id = ?", [held["id"]]).fetchone()[0]
    )
    assert held_body["notes"] == "Neighbour is his cousin"
    assert _notes(db, world, "v3")[0] == "notes for v3"
    details = certificate["details"]
    assert details["sync_records.body.notes"] == 1 and details["visits.notes"] == 1
    assert details["visits.cancel_reason"] == 1 and details["borrower_requests.note"] == 1
    assert details["borrowers"] == 1 and details["borrowers_held"] == 1
    assert certificate["removed_count"] == sum(v for k, v in details.items() if "." in k)
    assert "Wife said" not in json.dumps(certificate)
    assert certificate_is_signed(app.extensions["doorstep"].keys.public_key, certificate)

    # The phone sends the same record again: still the same delivery, answered as before.
    auth.login("agent1", "phone-agent1")
    _, replay = _push(
        client,
        auth.headers("agent1"),
        world.visits["v1"],
        notes="Wife said he works nights",
        record_id=report["id"],
    )
    assert replay["status"] == "duplicate"
    _purge(app)
    assert _certificates(client, auth, "free_text_notes")[1]["removed_count"] == 0
    _verify_intact(client, auth)


def test_a_record_body_changes_only_by_a_certified_notes_redaction(world, client, auth, db):
    report, _ = _push(client, auth.headers("agent1"), world.visits["v1"], notes="free text")
    for body in ('{"notes": "[redacted]"}', None):
        sql = (
            "UPDATE sync_records SET body = json_set(body, '$.notes', '[redacted]') WHERE id = ?"
            if body is None
            else "UPDATE sync_records SET body = ? WHERE id = ?"
        )
        args = [report["id"]] if body is None else [body, report["id"]]
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql, args)


def test_dry_run_lists_attachments_and_notes_and_changes_nothing(
    world, app, client, auth, db, clock
):
    agent = auth.headers("agent1")
    assert put_blob(client, agent, PHOTO).status_code == 201
    _push(client, agent, world.visits["v1"], [sha(PHOTO)], notes="Dog in the yard")
    _close(client, auth, 1)
    clock.advance(days=1100)
    dump = _dump(db)

    output = _purge(app, "--dry-run")

    assert _dump(db) == dump
    assert "attachments: would remove 1" in output
    assert f"blob sha256s: {sha(PHOTO)}" in output
    # The record itself goes under the evidence clock in this run: only the visit's and
    # the case history's free text remain to be emptied.
    assert "free_text_notes: would remove" in output
    assert '"sync_records.body.notes": 0' in output
    _purge(app)
    assert _hashes(db) == set()


def test_weakened_guards_of_records_and_blobs_are_reported(world, client, auth, db):
    db.execute("DROP TRIGGER blobs_no_delete")
    db.execute("DROP TRIGGER sync_records_reference_attachments")
    db.execute("DROP TRIGGER sync_records_no_update")
    if dialect(db) == "postgresql":  # the same weakening in PL/pgSQL
        db.execute(
            "CREATE FUNCTION weak() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
        )
        db.execute(
            "CREATE TRIGGER sync_records_no_update BEFORE UPDATE ON sync_records "
            "FOR EACH ROW EXECUTE FUNCTION weak()"
        )
    else:
        db.execute(
            "CREATE TRIGGER sync_records_no_update BEFORE UPDATE ON sync_records "
            "WHEN NEW.id != OLD.id BEGIN SELECT RAISE(ABORT, 'append-only'); END"
        )
    report = client.get(f"{API}/audit/verify", headers=auth.headers("privacy")).json
    assert report["intact"] is False
    assert "the append-only trigger blobs_no_delete was dropped" in report["findings"]
    assert "the append-only trigger sync_records_no_update was altered" in report["findings"]
    assert "the trigger sync_records_reference_attachments was dropped" in report["findings"]


def test_the_upload_sweep_leaves_a_blob_a_record_references_whoever_uploaded_it(
    world, client, auth, db, clock
):
    """A record from before owners were kept may reference another agent's upload: the
    uploader's unreferenced ownership expires, the blob stays with the record."""
    assert put_blob(client, auth.headers("agent2"), PHOTO).status_code == 201
    record = str(uuid.uuid4())
    db["sync_records"].insert(
        {
            "id": record,
            "kind": "visit_report",
            "agent_id": world.users["agent1"],
            "device_id": "phone-agent1",
            "visit_id": world.visits["v1"],
            "case_id": world.cases["C-0001"],
            "device_seq": 1,
            "recorded_at": to_iso(clock()),
            "received_at": to_iso(clock()),
            "digest": "d" * 64,
            "status": "stored",
            "outcome": "{}",
            "body": json.dumps({"attachments": [sha(PHOTO)]}),
        }
    )
    clock.advance(days=8)
    auth.login("agent1", "phone-agent1")
    assert put_blob(client, auth.headers("agent1"), SHARED).status_code == 201  # sweeps
    assert _hashes(db) == {sha(PHOTO), sha(SHARED)}
    assert _hashes(db, "blob_owners") == {sha(SHARED)}


def test_an_agreements_signature_images_go_with_the_agreement(world, app, client, auth, db, clock):
    agent = auth.headers("agent1")
    borrower_sig, agent_sig = SHARED, b"\xff\xd8\xff" + b"agent's signature" * 40
    for data in (borrower_sig, agent_sig):
        assert put_blob(client, agent, data).status_code == 201
    agreement = str(uuid.uuid4())
    db["sync_records"].insert(
        {
            "id": agreement,
            "kind": "agreement",
            "agent_id": world.users["agent1"],
            "device_id": "phone-agent1",
            "visit_id": world.visits["v1"],
            "case_id": world.cases["C-0001"],
            "device_seq": 1,
            "recorded_at": to_iso(clock()),
            "received_at": to_iso(clock()),
            "digest": "d" * 64,
            "status": "stored",
            "outcome": "{}",
            "body": json.dumps(
                {
                    "agreement_id": agreement,
                    "borrower_signature_sha256": sha(borrower_sig),
                    "agent_signature_sha256": sha(agent_sig),
                }
            ),
        }
    )
    clock.advance(days=1094)
    _purge(app)
    assert _hashes(db) == {sha(borrower_sig), sha(agent_sig)}

    clock.advance(days=2)
    _purge(app)

    assert _hashes(db) == set()
    assert db.execute("SELECT count(*) FROM sync_records").fetchone() == (0,)
    certificate = _certificates(client, auth, "attachments")[-1]
    assert certificate["details"]["blobs_with_their_records"] == 2


def test_a_case_with_an_evidence_pack_keeps_its_photos_past_the_clock(
    world, app, client, auth, db, clock
):
    agent = auth.headers("agent1")
    for data in (PHOTO, SHARED):
        assert put_blob(client, agent, data).status_code == 201
    _push(client, agent, world.visits["v1"], [sha(PHOTO)])
    _push(client, agent, world.visits["v2"], [sha(SHARED)])
    answer = client.post(
        f"{API}/cases/{world.cases['C-0001']}/evidence-pack",
        json={"reason": "Court filing 2026/114"},
        headers=auth.headers("privacy"),
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]

    clock.advance(days=1100)
    _purge(app)

    # The pack put C-0001 under legal hold: its record and photo stay; C-0002's went.
    assert _hashes(db) == {sha(PHOTO)}
    assert db.execute("SELECT DISTINCT case_id FROM sync_records").fetchall() == [
        (world.cases["C-0001"],)
    ]
