"""Tamper evidence against someone who can write the database file: each hole the review
found (forged tail, cut tail, edit and re-chain, removed checkpoints, another key, a row
slipped into the retention gate) is reported, or refused, now."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import click
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.clock import to_iso
from server.domain.ledger import chain, entry_hash, sign_checkpoint
from server.domain.retention import sign_certificate
from server.errors import SigningKeyUnknown
from server.keys import development_key_path
from server.services import audit, keyring
from server.services.checkpoints import checkpoint_dir
from server.storage.engine import dialect
from sync.signing import key_id
from tests.conftest import TODAY
from tests.unit.test_fhir_audit import check_r4_audit_event

API = "/api/v1/audit"


@pytest.fixture
def served(world, client, auth):
    """Eight ledger entries: two agents' days and the dispatcher's list."""
    for agent in ("agent1", "agent2"):
        response = client.get(f"/api/v1/me/day?date={TODAY}", headers=auth.headers(agent))
        assert response.status_code == 200
    client.get("/api/v1/visits", headers=auth.headers("dispatcher"))
    return world


def _verify(client, auth):
    response = client.get(f"{API}/verify", headers=auth.headers("privacy"))
    assert response.status_code == 200, response.json
    return response.json


def _entries(db):
    return [dict(row) for row in db.query("SELECT * FROM exposure_ledger ORDER BY seq")]


def _checkpoint_dir(app) -> Path:
    return checkpoint_dir(app.extensions["doorstep"])


def _external(app) -> list[dict]:
    lines = []
    for path in sorted(_checkpoint_dir(app).glob("ledger-checkpoints-*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines()]
    return lines


def _time_checkpoint(client, auth, clock):
    """Five minutes pass; the next request that uses the store signs the head."""
    clock.advance(seconds=301)
    response = client.get("/api/v1/visits", headers=auth.headers("dispatcher"))
    assert response.status_code == 200


def _drop(db, *triggers):
    for name in triggers:
        db.execute(f"DROP TRIGGER {name}")


def _rechain(db, entries):
    """Replace the whole ledger with a freshly re-hashed chain of these entries."""
    _drop(db, "exposure_ledger_no_update", "exposure_ledger_no_delete")
    db.execute("DELETE FROM exposure_ledger")
    content = [
        {k: v for k, v in e.items() if k not in ("seq", "prev_hash", "hash")} for e in entries
    ]
    db["exposure_ledger"].insert_all(chain(content, 0, "0" * 64))


# --- Checkpoints by time, written outside the database ---------------------------------


def test_a_time_checkpoint_signs_entries_that_waited_and_is_written_outside(
    served, app, client, auth, db, clock
):
    assert db.execute("SELECT count(*) FROM ledger_checkpoints").fetchone()[0] == 0
    client.get("/api/v1/visits", headers=auth.headers("dispatcher"))  # not yet 5 minutes
    assert db.execute("SELECT count(*) FROM ledger_checkpoints").fetchone()[0] == 0

    _time_checkpoint(client, auth, clock)

    [row] = [dict(r) for r in db.query("SELECT * FROM ledger_checkpoints")]
    # The request that noticed the wait had already added its own entries: all signed.
    assert row["head_seq"] == 16 and row["reason"] == "every 300 s"
    [line] = _external(app)
    assert line["id"] == row["id"] and line["head_hash"] == row["head_hash"]
    assert line["signature"] == row["signature"] and line["type"] == "ledger_checkpoint"
    day = to_iso(clock())[:10]
    assert (_checkpoint_dir(app) / f"ledger-checkpoints-{day}.jsonl").is_file()
    report = _verify(client, auth)
    assert report["intact"] is True and report["findings"] == []
    assert report["vouched_seq"] == 16 and report["external_checkpoints_checked"] == 1
    assert report["unvouched_entries"] == 0
    # Nothing new to sign: five more quiet minutes add no checkpoint.
    clock.advance(seconds=301)
    client.get("/api/v1/health")
    client.get("/api/v1/audit/checkpoints", headers=auth.headers("privacy"))
    assert db.execute("SELECT count(*) FROM ledger_checkpoints").fetchone()[0] == 1


def test_verify_says_how_far_back_it_vouches(served, app, client, auth, clock):
    report = _verify(client, auth)
    assert report["intact"] is True and report["vouched_seq"] is None
    assert "entries after seq 0 are not yet covered by any checkpoint" in report["coverage"]
    _time_checkpoint(client, auth, clock)
    client.get("/api/v1/visits", headers=auth.headers("dispatcher"))  # 4 more, not signed
    report = _verify(client, auth)
    assert report["vouched_seq"] == 12 and report["unvouched_entries"] == 4
    assert report["vouched_at"] == _external(app)[0]["created_at"]
    assert "entries after seq 12 are not yet covered by any checkpoint" in report["coverage"]


def test_cron_if_due_signs_a_quiet_tail_by_time(served, app, clock):
    runner = app.test_cli_runner()
    assert "no checkpoint due" in runner.invoke(args=["checkpoint", "--if-due"]).output
    clock.advance(seconds=300)
    result = runner.invoke(args=["checkpoint", "--if-due"])
    assert result.exit_code == 0 and "entry 8" in result.output
    assert [line["head_seq"] for line in _external(app)] == [8]


# --- The holes -------------------------------------------------------------------------


def test_a_forged_entry_appended_with_an_earlier_time_is_reported(served, client, auth, db, clock):
    _time_checkpoint(client, auth, clock)
    real = _entries(db)
    forged = {k: v for k, v in real[0].items() if k not in ("seq", "prev_hash", "hash")} | {
        "fields": '["national_id"]',
        "request_id": "forged",
    }
    # Correctly chained after the head, with a time from before the last checkpoint.
    db["exposure_ledger"].insert(chain([forged], real[-1]["seq"], real[-1]["hash"])[0])
    report = _verify(client, auth)
    assert report["intact"] is False
    assert any("entry 13" in f and "false time" in f for f in report["findings"])
    assert report["vouched_seq"] == 12 and report["unvouched_entries"] == 1


def test_a_forged_entry_with_a_current_time_is_not_vouched_for(served, client, auth, db, clock):
    _time_checkpoint(client, auth, clock)
    real = _entries(db)
    forged = {k: v for k, v in real[-1].items() if k not in ("seq", "prev_hash", "hash")}
    forged |= {"occurred_at": to_iso(clock()), "request_id": "forged"}
    db["exposure_ledger"].insert(chain([forged], real[-1]["seq"], real[-1]["hash"])[0])
    report = _verify(client, auth)
    # A chain cannot tell an append from a forgery: verify says it does not vouch for it.
    assert report["intact"] is True
    assert report["vouched_seq"] == 12 and report["unvouched_entries"] == 1
    assert "entries after seq 12 are not yet covered" in report["coverage"]


def test_deleting_the_last_entries_is_caught_by_the_time_checkpoint(
    served, client, auth, db, clock
):
    _time_checkpoint(client, auth, clock)
    _drop(db, "exposure_ledger_no_delete", "ledger_checkpoints_no_delete")
    db.execute("DELETE FROM exposure_ledger WHERE seq > 8")
    db.execute("DELETE FROM ledger_checkpoints")  # and the checkpoints that saw them
    report = _verify(client, auth)
    assert report["intact"] is False
    assert any("cut off the tail" in f for f in report["findings"])
    assert any("not in the database" in f for f in report["findings"])


def test_editing_an_entry_and_rechaining_is_caught_by_the_time_checkpoint(
    served, client, auth, db, clock
):
    _time_checkpoint(client, auth, clock)
    entries = _entries(db)
    entries[2]["fields"] = '["display_name"]'  # hide that a national id was served
    _rechain(db, entries)
    assert _entries(db)[2]["hash"] == entry_hash(_entries(db)[2])
    report = _verify(client, auth)
    assert report["intact"] is False
    assert any("rewritten" in f for f in report["findings"])


def test_deleting_stored_checkpoints_is_caught_by_the_external_files(served, app, client, auth, db):
    response = client.post(f"{API}/checkpoints", json={}, headers=auth.headers("privacy"))
    assert response.status_code == 201
    entries = _entries(db)
    entries[1]["purpose"] = "planning"
    _rechain(db, entries)
    _drop(db, "ledger_checkpoints_no_delete")
    db.execute("DELETE FROM ledger_checkpoints")
    report = _verify(client, auth)
    assert report["intact"] is False
    assert any(
        "is in the external files but not in the database: stored checkpoints were removed" in f
        for f in report["findings"]
    )
    assert any("rewritten" in f for f in report["findings"])


def test_starting_with_another_key_is_refused(served, app, make_app, client, auth, tmp_path):
    client.post(f"{API}/checkpoints", json={}, headers=auth.headers("privacy"))
    other = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SigningKeyUnknown, match="not in the ledger keyring"):
        make_app(SIGNING_KEY=other.decode())


def test_a_ledger_signed_only_by_an_unknown_key_refuses_a_new_key(served, app, make_app, db):
    """A database from before the keyring, started with another key than it was signed with."""
    app.test_cli_runner().invoke(args=["checkpoint"])
    _drop(db, "ledger_keys_no_delete")
    db.execute("DELETE FROM ledger_keys")
    other = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SigningKeyUnknown, match="not by this server's key"):
        make_app(SIGNING_KEY=other.decode())


def test_an_explicit_rotation_keeps_old_checkpoints_verifiable(
    served, app, make_app, client, auth, db, tmp_path
):
    client.post(f"{API}/checkpoints", json={}, headers=auth.headers("privacy"))
    old_key_file = development_key_path(app.extensions["doorstep"].settings)
    old_id = app.extensions["doorstep"].keys.key_id
    new_key_file = tmp_path / "new-key.pem"
    new_key_file.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    # Under `flask`, the app loads with the new key but every other command refuses...
    with click.Context(click.Command("keys")):
        pending = make_app(SIGNING_KEY_FILE=str(new_key_file))
    refused = pending.test_cli_runner().invoke(args=["checkpoint"])
    assert refused.exit_code == 1 and "signing_key_unknown" in refused.output
    served_503 = pending.test_client().get("/api/v1/health")
    assert served_503.status_code == 503
    assert served_503.json["error"]["code"] == "signing_key_unknown"
    # ... until the operator records the change, the old key handing over to the new one.
    rotated = pending.test_cli_runner().invoke(
        args=["keys", "rotate", "--previous-key-file", str(old_key_file)]
    )
    assert rotated.exit_code == 0, rotated.output
    new = make_app(SIGNING_KEY_FILE=str(new_key_file))
    new_id = new.extensions["doorstep"].keys.key_id
    listing = keyring.list_keys(db, new.extensions["doorstep"])
    keys = {k["key_id"]: k for k in listing["items"]}
    assert set(keys) == {old_id, new_id} and listing["current_key_id"] == new_id
    assert keys[new_id]["endorsed_by"] == old_id and keys[new_id]["current"] is True
    assert all(k["in_keyring_file"] for k in keys.values())
    keyring_file = _checkpoint_dir(app) / "keyring.jsonl"
    assert [json.loads(line)["key_id"] for line in keyring_file.read_text().splitlines()] == [
        old_id,
        new_id,
    ]
    runner = new.test_cli_runner()
    assert runner.invoke(args=["checkpoint"]).exit_code == 0
    report = audit.verify(db, new.extensions["doorstep"])
    assert report["intact"] is True, report["findings"]
    assert report["checkpoints_checked"] == 2 and report["external_checkpoints_checked"] == 2
    listed = runner.invoke(args=["keys", "list"]).output
    assert f"{new_id}  added" in listed and f"current, endorsed by {old_id}" in listed


def test_a_key_slipped_into_the_keyring_table_is_not_trusted(served, client, auth, db, clock):
    forger = Ed25519PrivateKey.generate()
    pem = forger.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    db["ledger_keys"].insert(
        {
            "key_id": key_id(forger.public_key()),
            "public_key_pem": pem.decode(),
            "added_at": to_iso(clock()),
            "added_by": "rotate",
        }
    )
    entries = _entries(db)
    forged = sign_checkpoint(forger, 8, entries[-1]["hash"], clock())
    db["ledger_checkpoints"].insert(
        {
            "created_at": to_iso(forged.created_at),
            "head_seq": 8,
            "head_hash": forged.head_hash,
            "key_id": forged.key_id,
            "signature": forged.signature,
            "reason": "forged",
        }
    )
    report = _verify(client, auth)
    assert report["intact"] is False
    assert any("not in the keyring file" in f for f in report["findings"])
    assert any("not in the keyring" in f and "checkpoint" in f for f in report["findings"])


def test_a_row_inserted_into_the_retention_gate_opens_nothing(served, app, client, auth, db):
    db.execute("INSERT INTO retention_gate (table_name) VALUES ('exposure_ledger')")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM exposure_ledger WHERE seq <= 8")
    # A certificate row written by hand, covering entries 1-8, signed by someone else.
    forger = Ed25519PrivateKey.generate()
    fake = sign_certificate(
        forger,
        kind="exposure_ledger",
        rule="forged",
        cutoff=served.clock(),
        removed_count=8,
        checkpoint_id=None,
        details={"from_seq": 1, "to_seq": 8},
        created_at=served.clock(),
    )
    certificate_id = (
        db["purge_certificates"]
        .insert({**fake, "details": json.dumps(fake["details"], sort_keys=True)})
        .last_pk
    )
    db.execute("UPDATE retention_gate SET certificate_id = ?", [certificate_id])
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM exposure_ledger WHERE seq <= 8")
    # A connection that is not Doorstep's cannot delete at all (SQLite: it lacks the
    # function; PostgreSQL: it vouched for no certificate, as above).
    if dialect(db) != "postgresql":
        plain = sqlite3.connect(app.config["DATABASE"])
        try:
            with pytest.raises(sqlite3.OperationalError, match="doorstep_certified"):
                plain.execute("DELETE FROM exposure_ledger WHERE seq <= 8")
        finally:
            plain.close()
    assert [e["seq"] for e in _entries(db)] == list(range(1, 9))
    report = _verify(client, auth)
    assert report["intact"] is False
    assert any(
        "retention gate holds a row for exposure_ledger" in f and "no valid certificate" in f
        for f in report["findings"]
    )


def test_a_dropped_guard_is_reported(served, client, auth, db):
    _drop(db, "sync_records_no_delete")
    if dialect(db) != "postgresql":  # a look-alike that refuses nothing
        db.execute(
            "CREATE TRIGGER exposure_ledger_no_delete_2 BEFORE DELETE ON exposure_ledger "
            "BEGIN SELECT 1; END"
        )
    report = _verify(client, auth)
    assert report["intact"] is False
    assert "the append-only trigger sync_records_no_delete was dropped" in report["findings"]


def test_a_retention_anchor_moved_to_any_checkpoint_is_reported(served, client, auth, db):
    """Deleting old entries and anchoring the chain at a signed checkpoint needs a signed
    ledger purge certificate too."""
    response = client.post(f"{API}/checkpoints", json={}, headers=auth.headers("privacy"))
    checkpoint = response.json
    _drop(db, "exposure_ledger_no_delete")
    db.execute("DELETE FROM exposure_ledger WHERE seq <= 8")
    db.execute(
        "INSERT INTO ledger_anchor (id, checkpoint_id, start_seq, start_hash) VALUES (1, ?, ?, ?)",
        [checkpoint["id"], checkpoint["head_seq"], checkpoint["head_hash"]],
    )
    report = _verify(client, auth)
    assert report["intact"] is False
    assert "not backed by a signed ledger purge certificate" in report["problem"]


# --- Command line ----------------------------------------------------------------------


def test_cli_verify_reports_and_exits_1_when_not_intact(served, app, client, auth, db, clock):
    runner = app.test_cli_runner()
    _time_checkpoint(client, auth, clock)
    good = runner.invoke(args=["ledger", "verify"])
    assert good.exit_code == 0, good.output
    assert "ledger intact" in good.output and "vouch for every entry" in good.output
    _drop(db, "ledger_checkpoints_no_delete")
    db.execute("DELETE FROM ledger_checkpoints")
    bad = runner.invoke(args=["ledger", "verify"])
    assert bad.exit_code == 1
    assert "NOT INTACT" in bad.output and "stored checkpoints were removed" in bad.output
    as_json = runner.invoke(args=["ledger", "verify", "--json"])
    assert json.loads(as_json.output)["intact"] is False


def test_keys_endpoint_is_for_auditors_and_admins(served, client, auth):
    for user in ("agent1", "dispatcher"):
        response = client.get(f"{API}/keys", headers=auth.headers(user))
        assert response.status_code == 403
    response = client.get(f"{API}/keys", headers=auth.headers("privacy"))
    assert response.status_code == 200
    [key] = response.json["items"]
    assert key["added_by"] == "first use" and key["current"] is True


@pytest.mark.sqlite_only  # `flask backup` copies a SQLite file; PostgreSQL's is pg_dump
def test_backup_copies_verify_without_the_external_files(served, app, client, auth, clock):
    _time_checkpoint(client, auth, clock)
    dest = Path(app.config["DATABASE"]).parent / "backups" / "copy.db"
    result = app.test_cli_runner().invoke(args=["backup", str(dest)])
    assert result.exit_code == 0, result.output
    assert "intact" in result.output


def test_cli_exports_the_ledger_as_fhir_audit_events(served, app, db, tmp_path, clock):
    out = tmp_path / "siem.jsonl"
    result = app.test_cli_runner().invoke(
        args=["ledger", "export-fhir", "--since", to_iso(clock()), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["id"] for e in events] == [f"doorstep-ledger-{n}" for n in range(1, 9)]
    for event, entry in zip(events, _entries(db), strict=True):
        check_r4_audit_event(event)
        assert event["recorded"] == entry["occurred_at"]
        borrower = event["entity"][0]
        assert borrower["what"]["identifier"]["value"] == str(entry["borrower_id"])
        assert [d["valueString"] for d in borrower["detail"]] == json.loads(entry["fields"])
    later = app.test_cli_runner().invoke(
        args=["ledger", "export-fhir", "--since", "2030-01-01T00:00:00Z", "--output", str(out)]
    )
    assert later.exit_code == 0 and out.read_text() == ""
    bad = app.test_cli_runner().invoke(args=["ledger", "export-fhir", "--since", "yesterday"])
    assert bad.exit_code == 2
