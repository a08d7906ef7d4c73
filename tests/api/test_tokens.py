"""Forged and misused tokens, device binding and revocation, refresh rotation, login limits.

Forgeries that need the server's private key are signed with it on purpose, so that the one
thing wrong with each token is the thing under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.auth.tokens import TOKEN_REFUSALS
from server.clock import to_iso
from tests.conftest import PASSWORD

ME = "/api/v1/me"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
REQUIRED = ("exp", "iat", "iss", "aud", "sub", "jti", "sid")


# --- helpers ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact(header: dict, claims: dict, signature: bytes) -> str:
    return f"{_signing_input(header, claims)}.{_b64(signature)}"


def _signing_input(header: dict, claims: dict) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _settings(app) -> dict[str, Any]:
    return app.extensions["doorstep"].settings


def _private_key(app) -> Ed25519PrivateKey:
    return app.extensions["doorstep"].keys.private_key


def _user_id(db, username: str) -> int:
    return db.execute("SELECT id FROM users WHERE username = ?", [username]).fetchone()[0]


def _open_session(db, username: str, clock) -> str:
    """A live session row, as a login would leave it (the device may not be registered yet)."""
    session_id = secrets.token_hex(16)
    db.execute(
        "INSERT INTO sessions (id, user_id, started_at) VALUES (?, ?, ?)",
        [session_id, _user_id(db, username), to_iso(clock())],
    )
    return session_id


def _claims(app, clock, db, username: str = "admin", **overrides: Any) -> dict[str, Any]:
    """Claims exactly like the server's own for this user (in a live session), with overrides."""
    settings = _settings(app)
    now = int(clock().timestamp())
    role = db.execute("SELECT role FROM users WHERE username = ?", [username]).fetchone()[0]
    device = f"phone-{username}" if role == "agent" else None
    claims: dict[str, Any] = {
        "iss": settings["ISSUER"],
        "aud": settings["AUDIENCE"],
        "sub": str(_user_id(db, username)),
        "jti": secrets.token_hex(16),
        "iat": now,
        "exp": now + 600,
        "typ": "access",
        "role": role,
        "sid": _open_session(db, username, clock),
    }
    if device:
        claims["device_id"] = device
    claims.update(overrides)
    return claims


def _sign(app, claims: dict[str, Any]) -> str:
    """Signed with the server's real key and algorithm."""
    return jwt.encode(claims, _private_key(app), algorithm="EdDSA")


def _bearer(token: str, device: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if device is not None:
        headers["X-Device-Id"] = device
    return headers


def _error(response) -> dict[str, Any]:
    body = response.get_json(silent=True) or {}
    assert set(body) == {"error", "request_id"}, body
    return body["error"]


def assert_refused(
    response, code: str, status: int = 401, *, reason: str | None = None
) -> dict[str, Any]:
    """The refusal, and for a refused token: a documented reason with its fixed message."""
    assert response.status_code == status, (response.status_code, response.get_json(silent=True))
    error = _error(response)
    assert error["code"] == code, error
    if code == "invalid_token":
        assert error["details"] == {"reason": error["details"].get("reason")}, error
        assert error["message"] == TOKEN_REFUSALS[error["details"]["reason"]], error
    if reason is not None:
        assert error["details"]["reason"] == reason, error
    return error


def _login(client, username: str, password: str = PASSWORD, device_id: str | None = None):
    body = {"username": username, "password": password}
    if device_id is not None:
        body["device_id"] = device_id
    return client.post(LOGIN, json=body)


def _staff_actions(db, action: str) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM staff_audit WHERE action = ? ORDER BY id", [action]))


# --- the control: a token built by these helpers is accepted -------------------------------


def test_control_token_signed_with_the_real_key_is_accepted(app, client, clock, db, world):
    assert client.get(ME, headers=_bearer(_sign(app, _claims(app, clock, db)))).status_code == 200
    agent = _claims(app, clock, db, "agent1")
    auth_headers = _bearer(_sign(app, agent), "phone-agent1")
    # The device only exists once agent1 has logged in from it.
    assert _login(client, "agent1", device_id="phone-agent1").status_code == 200
    response = client.get(ME, headers=auth_headers)
    assert response.status_code == 200, response.json
    assert response.json["device_id"] == "phone-agent1"


# --- forged tokens ---------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(app, client, clock, db, world, alg):
    token = _compact({"alg": alg, "typ": "JWT"}, _claims(app, clock, db), b"")
    assert_refused(client.get(ME, headers=_bearer(token)), "invalid_token")
    # Also without the trailing dot some parsers tolerate.
    assert_refused(client.get(ME, headers=_bearer(token.rstrip("."))), "invalid_token")


def test_real_token_with_header_rewritten_to_none_is_refused(app, client, clock, db, world):
    real = _sign(app, _claims(app, clock, db))
    _, payload, signature = real.split(".")
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}.{signature}"):
        assert_refused(client.get(ME, headers=_bearer(token)), "invalid_token")


def test_token_signed_by_another_ed25519_key_is_refused(app, client, clock, db, world):
    other = Ed25519PrivateKey.generate()
    kid = app.extensions["doorstep"].keys.key_id
    token = jwt.encode(_claims(app, clock, db), other, algorithm="EdDSA", headers={"kid": kid})
    assert_refused(client.get(ME, headers=_bearer(token)), "invalid_token")


def _public_key_variants(client, app) -> list[bytes]:
    pem = client.get("/api/v1/auth/public-key").json["public_key_pem"]
    raw = app.extensions["doorstep"].keys.public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return [pem.encode(), pem.strip().encode(), raw]


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_token_keyed_with_the_public_key_is_refused(app, client, clock, db, world, alg):
    """HS/RS confusion: the public key, which anyone can fetch, used as an HMAC secret."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    header = {"alg": alg, "typ": "JWT"}
    claims = _claims(app, clock, db)
    for secret in _public_key_variants(client, app):
        signature = hmac.new(secret, _signing_input(header, claims).encode(), digest).digest()
        token = _compact(header, claims, signature)
        assert_refused(client.get(ME, headers=_bearer(token)), "invalid_token")


def test_tampered_payload_is_refused(app, client, clock, db, world):
    real = _sign(app, _claims(app, clock, db, "dispatcher"))
    header, _, signature = real.split(".")
    payload = _b64(json.dumps(_claims(app, clock, db, "admin")).encode())
    assert_refused(
        client.get(ME, headers=_bearer(f"{header}.{payload}.{signature}")), "invalid_token"
    )


def test_expired_token_is_refused(client, auth, clock, world):
    headers = auth.headers("admin")
    clock.advance(minutes=14)
    assert client.get(ME, headers=headers).status_code == 200
    clock.advance(minutes=2)  # 16 minutes after issue; the lifetime is 15
    assert_refused(client.get(ME, headers=headers), "invalid_token")


def test_token_issued_in_the_future_is_refused(app, client, clock, db, world):
    now = int(clock().timestamp())
    claims = _claims(app, clock, db, iat=now + 3600, exp=now + 4000)
    assert_refused(client.get(ME, headers=_bearer(_sign(app, claims))), "invalid_token")


def test_non_integer_exp_is_refused(app, client, clock, db, world):
    claims = _claims(app, clock, db)
    claims["exp"] = str(claims["exp"])
    assert_refused(client.get(ME, headers=_bearer(_sign(app, claims))), "invalid_token")


@pytest.mark.parametrize(
    "audience",
    [
        "someone-else",
        "doorstep-api-evil",
        "doorstep",
        "DOORSTEP-API",
        ["someone-else"],
        [],
        "",
    ],
)
def test_wrong_audience_is_refused(app, client, clock, db, world, audience):
    assert _settings(app)["AUDIENCE"] == "doorstep-api"  # the forgeries below assume it
    token = _sign(app, _claims(app, clock, db, aud=audience))
    assert_refused(client.get(ME, headers=_bearer(token)), "invalid_token")


def _issuer_variants(issuer: str) -> list[str]:
    return [
        "https://evil.example/api/v1",
        issuer[:-1],  # a prefix of the real issuer
        issuer.rsplit("/", 1)[0],  # a shorter prefix
        "https://doorstep.local",
        issuer + "/",  # extends it
        issuer + "x",
        issuer + ".evil.example",
        issuer.upper(),
        "",
    ]


def test_wrong_issuer_is_refused_including_prefixes_and_extensions(app, client, clock, db, world):
    issuer = _settings(app)["ISSUER"]
    for bad in _issuer_variants(issuer):
        assert bad != issuer
        token = _sign(app, _claims(app, clock, db, iss=bad))
        assert_refused(client.get(ME, headers=_bearer(token)), "invalid_token")
    # A list containing the real issuer is not an issuer either (PyJWT will not encode it).
    header = {"alg": "EdDSA", "typ": "JWT"}
    claims = _claims(app, clock, db, iss=[issuer])
    signature = _private_key(app).sign(_signing_input(header, claims).encode())
    token = _compact(header, claims, signature)
    assert_refused(client.get(ME, headers=_bearer(token)), "invalid_token")


@pytest.mark.parametrize("claim", REQUIRED)
def test_token_missing_a_required_claim_is_refused(app, client, clock, db, world, claim):
    claims = _claims(app, clock, db)
    del claims[claim]
    assert_refused(client.get(ME, headers=_bearer(_sign(app, claims))), "invalid_token")


@pytest.mark.parametrize("typ", ["refresh", "id", "ACCESS", None])
def test_token_whose_typ_is_not_access_is_refused(app, client, clock, db, world, typ):
    claims = _claims(app, clock, db)
    if typ is None:
        del claims["typ"]
    else:
        claims["typ"] = typ
    assert_refused(client.get(ME, headers=_bearer(_sign(app, claims))), "invalid_token")


def test_refresh_token_used_as_bearer_is_refused(client, auth, world):
    pair = auth.login("admin")
    assert_refused(client.get(ME, headers=_bearer(pair["refresh_token"])), "invalid_token")
    agent = auth.login("agent1", "phone-agent1")
    assert_refused(
        client.get(ME, headers=_bearer(agent["refresh_token"], "phone-agent1")), "invalid_token"
    )


def test_role_claim_that_disagrees_with_the_account_is_refused(app, client, clock, db, world):
    """Even with a valid signature, an agent's token claiming `admin` is not an admin."""
    assert _login(client, "agent1", device_id="phone-agent1").status_code == 200
    claims = _claims(app, clock, db, "agent1", role="admin")
    response = client.get("/api/v1/users", headers=_bearer(_sign(app, claims), "phone-agent1"))
    assert_refused(response, "invalid_token")


def _garbage_tokens(app, clock, db) -> dict[str, tuple[str, str]]:
    """name -> (token, the reason it must be refused for)."""
    real = _sign(app, _claims(app, clock, db))
    header, payload, signature = real.split(".")
    now = int(clock().timestamp())
    key = _private_key(app)

    def signed(header_fields: dict, claims: dict) -> str:
        head = {"alg": "EdDSA", "typ": "JWT", **header_fields}
        return _compact(head, claims, key.sign(_signing_input(head, claims).encode()))

    claims = _claims(app, clock, db)
    return {
        "one word": ("garbage", "malformed"),
        "three dots": ("...", "malformed"),
        "letters": ("a.b.c", "malformed"),
        "four segments": (f"{real}.x", "malformed"),
        "header is a list": (f"{_b64(b'[]')}.{payload}.{signature}", "malformed"),
        "signature not base64": (f"{header}.{payload}.!!!", "malformed"),
        "huge": ("x" * 4000, "malformed"),
        "alg none": (_compact({"alg": "none"}, claims, b""), "unsupported_algorithm"),
        "alg is a number": (_compact({"alg": 5}, claims, b"x" * 64), "unsupported_algorithm"),
        "HS256": (jwt.encode(claims, "k" * 32, algorithm="HS256"), "unsupported_algorithm"),
        "signature cut": (f"{header}.{payload}.{signature[:-4]}AAAA", "bad_signature"),
        "another key": (jwt.encode(claims, Ed25519PrivateKey.generate(), "EdDSA"), "bad_signature"),
        "payload swapped": (f"{header}.{_b64(b'{}')}.{signature}", "bad_signature"),
        "other audience": (_sign(app, {**claims, "aud": "billing"}), "wrong_audience"),
        "other issuer": (_sign(app, {**claims, "iss": "https://evil.example"}), "wrong_issuer"),
        "no jti": (_sign(app, {k: v for k, v in claims.items() if k != "jti"}), "missing_claim"),
        "numeric sub": (signed({}, {**claims, "sub": 1}), "invalid_claim"),
        "numeric sid": (signed({}, {**claims, "sid": 1}), "invalid_claim"),
        "float exp": (signed({}, {**claims, "exp": now + 60.5}), "invalid_claim"),
        "expired": (_sign(app, {**claims, "iat": now - 7200, "exp": now - 3600}), "expired"),
        "from the future": (_sign(app, {**claims, "iat": now + 3600}), "not_yet_valid"),
        "nbf ahead": (_sign(app, {**claims, "nbf": now + 3600}), "not_yet_valid"),
        "typ refresh": (_sign(app, {**claims, "typ": "refresh"}), "not_access_token"),
        "critical header": (signed({"crit": ["x-doorstep"]}, claims), "invalid"),
        "kid not a string": (signed({"kid": {"x": 1}}, claims), "invalid"),
    }


# What the JWT library says about these tokens; none of it may reach a client.
LIBRARY_PHRASES = (
    "segments",
    "padding",
    "Signature verification failed",
    "alg value",
    "Audience doesn't match",
    "Invalid issuer",
    "is missing the",
    "must be a",
    "not yet valid (nbf)",
    "critical extension",
    "Key ID",
    "Invalid header string",
)


def test_garbage_tokens_get_the_documented_message_for_their_reason(app, client, clock, db, world):
    tokens = _garbage_tokens(app, clock, db)
    assert set(TOKEN_REFUSALS) - {reason for _, reason in tokens.values()} == {
        "account_changed",
        "session_ended",
        "no_device",
        "unknown_device",
        "refresh_refused",
    }  # those need a well-signed token (or a refresh token): tested on their own below
    for name, (token, reason) in tokens.items():
        response = client.get(ME, headers=_bearer(token))
        error = assert_refused(response, "invalid_token", reason=reason)
        assert error["message"] == TOKEN_REFUSALS[reason], name
        body = response.get_data(as_text=True)
        assert not [p for p in LIBRARY_PHRASES if p in body], (name, body)


def test_refusals_that_need_a_well_signed_token_say_why(app, client, clock, db, world):
    assert _login(client, "agent1", device_id="phone-agent1").status_code == 200
    agent = _claims(app, clock, db, "agent1")
    cases = {
        "account_changed": (_claims(app, clock, db, "agent1", role="dispatcher"), "phone-agent1"),
        "session_ended": ({**agent, "sid": "no-such-session"}, "phone-agent1"),
        "no_device": ({k: v for k, v in agent.items() if k != "device_id"}, None),
        "unknown_device": ({**agent, "device_id": "phone-nobody"}, "phone-nobody"),
    }
    for reason, (claims, device) in cases.items():
        response = client.get(ME, headers=_bearer(_sign(app, claims), device))
        assert_refused(response, "invalid_token", reason=reason)
    refused = client.post(REFRESH, json={"refresh_token": "rt_" + "x" * 43})
    assert_refused(refused, "invalid_token", reason="refresh_refused")


def test_docs_list_every_refusal_reason_with_its_message():
    docs = (Path(__file__).parents[2] / "docs" / "tokens.md").read_text()
    rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]+?) \|", docs, flags=re.MULTILINE)
    assert dict(rows) == TOKEN_REFUSALS
    assert len(rows) == len(TOKEN_REFUSALS)


def test_authorization_header_without_bearer_scheme_is_refused(client, auth, world):
    token = auth.login("admin")["access_token"]
    for value in (token, f"Basic {token}", "Bearer", "Bearer "):
        assert_refused(client.get(ME, headers={"Authorization": value}), "not_authenticated")


# --- device binding ----------------------------------------------------------------------


def test_agent_token_from_another_device_is_refused(client, auth, world):
    token = auth.login("agent1", "phone-agent1")["access_token"]
    auth.login("agent2", "phone-agent2")
    assert client.get(ME, headers=_bearer(token, "phone-agent1")).status_code == 200
    for device in ("phone-agent2", "phone-unknown", "PHONE-AGENT1", ""):
        error = assert_refused(client.get(ME, headers=_bearer(token, device)), "device_mismatch")
        assert error["field"] == "X-Device-Id"
    assert_refused(client.get(ME, headers=_bearer(token)), "device_mismatch")


def test_agent_token_bound_to_another_agents_device_is_refused(app, client, clock, db, world):
    assert _login(client, "agent2", device_id="phone-agent2").status_code == 200
    claims = _claims(app, clock, db, "agent1", device_id="phone-agent2")
    response = client.get(ME, headers=_bearer(_sign(app, claims), "phone-agent2"))
    assert_refused(response, "invalid_token")


def test_agent_token_without_device_claim_is_refused(app, client, clock, db, world):
    assert _login(client, "agent1", device_id="phone-agent1").status_code == 200
    claims = _claims(app, clock, db, "agent1")
    del claims["device_id"]
    assert_refused(client.get(ME, headers=_bearer(_sign(app, claims))), "invalid_token")


def test_revoked_device_token_and_refresh_fail_with_wipe(client, auth, world, db):
    pair = auth.login("agent1", "phone-agent1")
    headers = _bearer(pair["access_token"], "phone-agent1")
    assert client.get(ME, headers=headers).status_code == 200

    response = client.post(
        "/api/v1/devices/phone-agent1/revoke",
        json={"reason": "phone lost"},
        headers=auth.headers("admin"),
    )
    assert response.status_code == 200, response.json
    assert response.json["status"] == "revoked"

    error = assert_refused(client.get(ME, headers=headers), "device_revoked")
    assert error["details"]["wipe"] is True
    # Logging in again from the revoked phone gets the same answer.
    error = assert_refused(_login(client, "agent1", device_id="phone-agent1"), "device_revoked")
    assert error["details"]["wipe"] is True
    # The agent enrols another phone (a new id from the server) and logs in from it.
    replacement = _login(client, "agent1")
    assert replacement.status_code == 200 and replacement.json["device_id"] != "phone-agent1"

    rows = _staff_actions(db, "device_revoked")
    assert [(r["target_id"], r["username"]) for r in rows] == [("phone-agent1", "admin")]
    assert json.loads(rows[0]["details"])["reason"] == "phone lost"


def test_revoked_device_refresh_is_told_to_wipe(client, auth, world):
    pair = auth.login("agent1", "phone-agent1")
    response = client.post(
        "/api/v1/devices/phone-agent1/revoke", json={}, headers=auth.headers("admin")
    )
    assert response.status_code == 200, response.json
    error = assert_refused(
        client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}), "device_revoked"
    )
    assert error["details"]["wipe"] is True


def test_revoking_an_unknown_device_is_404(client, auth, world):
    response = client.post(
        "/api/v1/devices/no-such-phone/revoke", json={}, headers=auth.headers("admin")
    )
    assert_refused(response, "not_found", status=404)


# --- refresh rotation and logout -------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_the_family(client, auth, world, db):
    first = auth.login("dispatcher")
    other_session = _login(client, "dispatcher").json

    response = client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200, response.json
    second = response.json
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert client.get(ME, headers=_bearer(second["access_token"])).status_code == 200

    # The spent token comes back: refused, and the whole family with it.
    assert_refused(
        client.post(REFRESH, json={"refresh_token": first["refresh_token"]}),
        "refresh_token_reused",
    )
    assert_refused(
        client.post(REFRESH, json={"refresh_token": second["refresh_token"]}), "invalid_token"
    )
    # Another login of the same user is another family and keeps working.
    response = client.post(REFRESH, json={"refresh_token": other_session["refresh_token"]})
    assert response.status_code == 200, response.json
    assert len(_staff_actions(db, "refresh_token_reused")) == 1


def test_agent_refresh_keeps_the_device_binding(client, auth, world):
    pair = auth.login("agent1", "phone-agent1")
    response = client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert response.status_code == 200, response.json
    assert response.json["device_id"] == "phone-agent1"
    token = response.json["access_token"]
    assert client.get(ME, headers=_bearer(token, "phone-agent1")).status_code == 200
    assert_refused(client.get(ME, headers=_bearer(token, "phone-agent2")), "device_mismatch")


def test_unknown_and_expired_refresh_tokens_are_refused(client, auth, clock, world):
    assert_refused(
        client.post(REFRESH, json={"refresh_token": "rt_" + secrets.token_urlsafe(32)}),
        "invalid_token",
    )
    pair = auth.login("admin")
    clock.advance(days=31)
    assert_refused(
        client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}), "invalid_token"
    )


def test_logout_revokes_the_family(client, auth, world):
    first = auth.login("admin")
    second = client.post(REFRESH, json={"refresh_token": first["refresh_token"]}).json
    response = client.post(LOGOUT, json={"refresh_token": second["refresh_token"]})
    assert response.status_code == 204
    assert_refused(
        client.post(REFRESH, json={"refresh_token": second["refresh_token"]}), "invalid_token"
    )


# --- login ------------------------------------------------------------------------------


def test_wrong_password_is_refused_and_logged(client, world, db):
    assert_refused(_login(client, "dispatcher", "wrong-password-123"), "invalid_credentials")
    rows = _staff_actions(db, "login_failed")
    assert [(r["username"], r["target_id"]) for r in rows] == [("dispatcher", "dispatcher")]
    assert "wrong-password" not in json.dumps(rows)


def test_unknown_user_is_refused_like_a_wrong_password(client, world, db):
    unknown = _login(client, "nobody-here")
    wrong = _login(client, "dispatcher", "wrong-password-123")
    assert_refused(unknown, "invalid_credentials")
    assert _error(unknown)["message"] == _error(wrong)["message"]
    assert [r["username"] for r in _staff_actions(db, "login_failed")] == [
        "nobody-here",
        "dispatcher",
    ]


def test_disabled_user_cannot_log_in_and_its_tokens_stop(client, auth, world, db):
    headers = auth.headers("dispatcher")
    db.execute("UPDATE users SET active = 0 WHERE username = 'dispatcher'")
    assert_refused(_login(client, "dispatcher"), "invalid_credentials")
    assert_refused(client.get(ME, headers=headers), "invalid_token")
    assert_refused(
        client.post(REFRESH, json={"refresh_token": auth.sessions["dispatcher"]["refresh_token"]}),
        "invalid_token",
    )
    assert len(_staff_actions(db, "login_failed")) == 1


def test_login_rate_limit_holds_back_the_failing_username_and_address(client, clock, world, db):
    for _ in range(5):
        assert_refused(_login(client, "dispatcher", "wrong-password-123"), "invalid_credentials")
    response = _login(client, "dispatcher")  # the right password, from the guessing address
    error = assert_refused(response, "rate_limited", status=429)
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= 15 * 60
    assert error["details"]["retry_after"] == retry_after
    # The limit is per (user, address): another account from the same address logs in.
    assert _login(client, "privacy").status_code == 200
    assert len(_staff_actions(db, "login_failed")) == 5

    clock.advance(minutes=16)
    response = _login(client, "dispatcher")
    assert response.status_code == 200, response.json


def test_agent_cannot_log_in_with_another_agents_device(client, world):
    assert _login(client, "agent2", device_id="phone-agent2").status_code == 200
    error = assert_refused(
        _login(client, "agent1", device_id="phone-agent2"), "device_not_allowed", status=403
    )
    assert error["field"] == "device_id"


def test_revoked_device_confirms_its_wipe_with_its_expired_token(client, auth, world, db, clock):
    headers = auth.headers("agent1")
    not_yet = client.post("/api/v1/devices/wipe-confirmation", headers=headers)
    assert not_yet.status_code == 409
    client.post(
        "/api/v1/devices/phone-agent1/revoke",
        json={"reason": "stolen"},
        headers=auth.headers("admin"),
    )
    clock.advance(hours=3)  # the access token expired while the phone was offline
    other = client.post(
        "/api/v1/devices/wipe-confirmation", headers={**headers, "X-Device-Id": "phone-agent2"}
    )
    assert other.status_code == 401 and other.json["error"]["code"] == "device_mismatch"
    done = client.post("/api/v1/devices/wipe-confirmation", headers=headers)
    assert done.status_code == 200 and done.json["wipe_confirmed_at"]
    row = next(db.query("SELECT wipe_confirmed_at FROM devices WHERE id = 'phone-agent1'"))
    assert row["wipe_confirmed_at"] == done.json["wipe_confirmed_at"]


# --- last contact --------------------------------------------------------------------------


def _last_seen(client, auth, device_id: str) -> str | None:
    devices = client.get("/api/v1/devices", headers=auth.headers("admin")).json
    return next(d["last_seen_at"] for d in devices if d["id"] == device_id)


@pytest.mark.sqlite_only  # reads SQLite's data_version to show the store was not written
def test_an_agents_requests_keep_its_device_last_seen_at_to_the_minute(
    world, client, auth, db, clock
):
    agent = auth.headers("agent1")
    assert client.get(ME, headers=agent).status_code == 200
    first = clock.now
    assert _last_seen(client, auth, "phone-agent1") == to_iso(first)

    # Within the minute a request only reads: the store is not written at all.
    clock.advance(seconds=59)
    version = db.execute("PRAGMA data_version").fetchone()[0]
    for _ in range(3):
        assert client.get(ME, headers=agent).status_code == 200
    assert db.execute("PRAGMA data_version").fetchone()[0] == version
    assert _last_seen(client, auth, "phone-agent1") == to_iso(first)

    clock.advance(seconds=1)
    assert client.get(ME, headers=agent).status_code == 200
    assert _last_seen(client, auth, "phone-agent1") == to_iso(clock.now)

    # A refused request is no contact from the device.
    clock.advance(minutes=5)
    wrong_device = {**agent, "X-Device-Id": "phone-agent2"}
    assert client.get(ME, headers=wrong_device).status_code == 401
    assert _last_seen(client, auth, "phone-agent1") == to_iso(clock.now - timedelta(minutes=5))
