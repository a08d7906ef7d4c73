"""Signed checkpoints: export, offline check, and detection of every kind of tampering."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.domain.ledger import chain, sign_checkpoint
from server.services import checkpoints
from tests.conftest import TODAY

API = "/api/v1/audit"


@pytest.fixture
def served(world, client, auth):
    """Eight ledger entries: two agents' days and the dispatcher's list."""
    for agent in ("agent1", "agent2"):
        response = client.get(f"/api/v1/me/day?date={TODAY}", headers=auth.headers(agent))
        assert response.status_code == 200
    client.get("/api/v1/visits", headers=auth.headers("dispatcher"))
    return world


def _checkpoint(client, auth, reason=None):
    response = client.post(
        f"{API}/checkpoints",
        json={} if reason is None else {"reason": reason},
        headers=auth.headers("privacy"),
    )
    assert response.status_code == 201, response.json
    return response.json


def _check(client, auth, document):
    response = client.post(
        f"{API}/verify-checkpoint", json=document, headers=auth.headers("privacy")
    )
    assert response.status_code == 200, response.json
    return response.json


def _entries(db):
    return [dict(row) for row in db.query("SELECT * FROM exposure_ledger ORDER BY seq")]


def _drop_guards(db):
    db.execute("DROP TRIGGER exposure_ledger_no_update")
    db.execute("DROP TRIGGER exposure_ledger_no_delete")


def _rewrite(db, entries):
    """An attacker with the file replaces the ledger with a freshly re-hashed chain."""
    _drop_guards(db)
    db.execute("DELETE FROM exposure_ledger")
    content = [
        {k: v for k, v in e.items() if k not in ("seq", "prev_hash", "hash")} for e in entries
    ]
    db["exposure_ledger"].insert_all(chain(content, 0, "0" * 64))


def test_checkpoint_signs_the_head_and_exports_a_verifiable_file(served, client, auth, db, app):
    document = _checkpoint(client, auth, "quarterly audit")
    last = _entries(db)[-1]
    assert (document["head_seq"], document["head_hash"]) == (8, last["hash"])
    assert document["reason"] == "quarterly audit"
    assert document["version"] == "doorstep-ledger-checkpoint-v1"
    rt = app.extensions["doorstep"]
    assert document["public_key_pem"] == rt.keys.public_pem()

    # Anyone holding the file can check it with the key it names, no server needed.
    public_key = serialization.load_pem_public_key(document["public_key_pem"].encode())
    signature = base64.urlsafe_b64decode(document["signature"] + "==")
    message = (
        f"doorstep-ledger-checkpoint-v1\n{document['key_id']}\n8\n{last['hash']}\n"
        f"{document['created_at']}"
    ).encode()
    public_key.verify(signature, message)  # raises if forged

    exported = client.get(f"{API}/checkpoints/{document['id']}", headers=auth.headers("admin"))
    assert exported.status_code == 200
    assert exported.json == document
    assert "attachment" in exported.headers["Content-Disposition"]
    listed = client.get(f"{API}/checkpoints", headers=auth.headers("privacy")).json
    assert [c["id"] for c in listed["items"]] == [document["id"]]
    assert listed["items"][0]["head_seq"] == 8 and listed["next_after"] is None
    missing = client.get(f"{API}/checkpoints/999", headers=auth.headers("privacy"))
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    logged = db.execute(
        "SELECT target_id FROM staff_audit WHERE action = 'ledger_checkpoint'"
    ).fetchall()
    assert logged == [(str(document["id"]),)]


def test_intact_ledger_verifies_and_keeps_verifying_as_it_grows(served, client, auth, db):
    document = _checkpoint(client, auth)
    report = _check(client, auth, document)
    assert report["intact"] is True and report["problem"] is None
    assert report["signature_valid"] is True
    assert report["entries_checked"] == 8 and report["ledger_head_seq"] == 8
    client.get("/api/v1/visits", headers=auth.headers("dispatcher"))
    report = _check(client, auth, document)
    assert report["intact"] is True and report["ledger_head_seq"] == 12


def _edit_and_rehash(db):
    entries = _entries(db)
    entries[2]["fields"] = '["display_name"]'
    _rewrite(db, entries)


def _insert_and_rehash(db):
    entries = _entries(db)
    entries.insert(3, {**entries[3], "borrower_id": 999})
    _rewrite(db, entries[:8])  # keep the count: only the hashes can tell


def _delete_and_rehash(db):
    entries = _entries(db)
    del entries[4]
    extra = {**entries[-1], "request_id": "forged-padding"}
    _rewrite(db, [*entries, extra])  # pad back to eight entries


@pytest.mark.parametrize(
    "tamper",
    [_edit_and_rehash, _insert_and_rehash, _delete_and_rehash],
    ids=["edited", "inserted", "deleted"],
)
def test_rewritten_chain_is_caught_by_the_checkpoint(served, client, auth, db, tamper):
    document = _checkpoint(client, auth)
    tamper(db)
    # The rewritten chain is internally consistent: only the signed head gives it away.
    assert [e["seq"] for e in _entries(db)] == list(range(1, 9))
    report = _check(client, auth, document)
    assert report["intact"] is False
    assert report["problem"] == "head_mismatch"
    assert report["signature_valid"] is True
    verify = client.get(f"{API}/verify", headers=auth.headers("privacy")).json
    assert verify["intact"] is False and "rewritten" in verify["problem"]


@pytest.mark.parametrize(
    ("statement", "first_broken"),
    [
        ("UPDATE exposure_ledger SET purpose = 'marketing' WHERE seq = 3", 3),
        ("DELETE FROM exposure_ledger WHERE seq = 5", 5),
    ],
)
def test_edit_or_delete_without_rehash_breaks_the_chain(
    served, client, auth, db, statement, first_broken
):
    document = _checkpoint(client, auth)
    _drop_guards(db)
    db.execute(statement)
    report = _check(client, auth, document)
    assert report["intact"] is False
    assert report["problem"] == "chain"
    assert report["first_broken_seq"] == first_broken


def test_truncated_tail_is_detected(served, client, auth, db):
    document = _checkpoint(client, auth)
    _drop_guards(db)
    db.execute("DELETE FROM exposure_ledger WHERE seq > 6")
    report = _check(client, auth, document)
    assert report["intact"] is False
    assert report["problem"] == "truncated"
    assert report["ledger_head_seq"] == 6 and report["first_broken_seq"] == 7
    # The stored checkpoint lets the plain verification see the cut as well.
    verify = client.get(f"{API}/verify", headers=auth.headers("privacy")).json
    assert verify["intact"] is False
    assert verify["first_broken_seq"] == 7 and "tail" in verify["problem"]


def _flip(text: str) -> str:
    return ("A" if text[0] != "A" else "B") + text[1:]


@pytest.mark.parametrize(
    "alter",
    [
        lambda d: {**d, "head_seq": d["head_seq"] - 1},
        lambda d: {**d, "head_hash": "f" * 64},
        lambda d: {**d, "created_at": "2031-01-01T00:00:00Z"},
        lambda d: {**d, "signature": _flip(d["signature"])},
        lambda d: {**d, "signature": "not-a-signature"},
    ],
    ids=["head_seq", "head_hash", "created_at", "signature", "garbage"],
)
def test_altered_checkpoint_is_rejected(served, client, auth, alter):
    report = _check(client, auth, alter(_checkpoint(client, auth)))
    assert report["intact"] is False
    assert report["problem"] == "signature"
    assert report["signature_valid"] is False


def test_checkpoint_forged_with_another_key_is_rejected(served, client, auth, db, clock):
    document = _checkpoint(client, auth)
    forger = Ed25519PrivateKey.generate()
    forged = sign_checkpoint(forger, 8, document["head_hash"], clock())
    # The server's key id with the forger's signature: the key id alone proves nothing.
    same_id = {**document, "signature": forged.signature}
    assert _check(client, auth, same_id)["problem"] == "signature"
    # A file naming the forger's own key: refused, the server trusts only its own key.
    pem = forger.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    own = {**document, **forged.to_dict(), "public_key_pem": pem.decode()}
    report = _check(client, auth, own)
    assert report["intact"] is False and report["problem"] == "signature"
    without_key = {k: v for k, v in own.items() if k != "public_key_pem"}
    assert _check(client, auth, without_key)["problem"] == "signature"


@pytest.mark.parametrize(
    "body",
    [
        {"head_seq": 8},
        {
            "head_seq": "8",
            "head_hash": "0" * 64,
            "created_at": "x",
            "key_id": "k",
            "signature": "s",
        },
        {"extra": 1},
    ],
)
def test_malformed_body_is_refused(served, client, auth, body):
    response = client.post(f"{API}/verify-checkpoint", json=body, headers=auth.headers("privacy"))
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_failed"


def test_unreadable_values_are_refused(served, client, auth):
    document = _checkpoint(client, auth)
    for bad in ({"created_at": "2026-11-24 02:00:00"}, {"head_hash": "XYZ"}, {"key_id": "k"}):
        response = client.post(
            f"{API}/verify-checkpoint", json={**document, **bad}, headers=auth.headers("privacy")
        )
        assert response.status_code == 422, bad
        assert response.json["error"]["code"] == "invalid_input"


def test_checkpoint_every_n_entries(served, make_app, db, clock):
    every_5 = make_app(CHECKPOINT_EVERY=5).extensions["doorstep"]
    first = checkpoints.maybe_checkpoint(db, every_5, clock())
    assert first is not None and first["head_seq"] == 8 and first["reason"] == "every 5 entries"
    assert checkpoints.maybe_checkpoint(db, every_5, clock()) is None
    never = make_app(CHECKPOINT_EVERY=0).extensions["doorstep"]
    assert checkpoints.maybe_checkpoint(db, never, clock()) is None


def test_cli_checkpoint_exports_a_file_that_verifies(served, app, client, auth, tmp_path):
    runner = app.test_cli_runner()
    path = tmp_path / "checkpoint.json"
    result = runner.invoke(args=["checkpoint", "--export", str(path)])
    assert result.exit_code == 0, result.output
    assert "entry 8" in result.output
    document = json.loads(path.read_text())
    assert document["reason"] == "scheduled"
    assert _check(client, auth, document)["intact"] is True
    result = runner.invoke(args=["checkpoint", "--if-due"])
    assert result.exit_code == 0 and "no checkpoint due" in result.output


@pytest.mark.parametrize("user", ["agent1", "dispatcher"])
def test_field_and_dispatch_roles_are_refused(served, client, auth, user):
    headers = auth.headers(user)
    for method, path in (
        ("GET", "/checkpoints"),
        ("POST", "/checkpoints"),
        ("GET", "/checkpoints/1"),
        ("POST", "/verify-checkpoint"),
        ("GET", "/purge-certificates"),
    ):
        response = client.open(f"{API}{path}", method=method, json={}, headers=headers)
        assert response.status_code == 403, (method, path)
        assert response.json["error"]["code"] == "forbidden"
