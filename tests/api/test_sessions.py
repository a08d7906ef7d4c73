"""Sessions that end: the access tokens of a session stop at once when it ends.

Four ways a session ends: logout, a spent refresh token coming back (the family is revoked),
the device being revoked, the account being disabled. Before sessions existed each left
the session's access tokens working until they expired (15 minutes).
"""

from __future__ import annotations

import hashlib
import json

from tests.conftest import PASSWORD

API = "/api/v1"
ME = f"{API}/me"


def _bearer(pair: dict, device: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    if device:
        headers["X-Device-Id"] = device
    return headers


def _login(client, username: str, device: str | None = None) -> dict:
    body = {"username": username, "password": PASSWORD}
    if device:
        body["device_id"] = device
    response = client.post(f"{API}/auth/login", json=body)
    assert response.status_code == 200, response.json
    return response.json


def _refusal(response) -> tuple[int, str, str | None]:
    error = response.json["error"]
    return response.status_code, error["code"], error["details"].get("reason")


def _end_reason(db, pair: dict) -> str | None:
    """Why the session this login began ended (None: still open)."""
    token_hash = hashlib.sha256(pair["refresh_token"].encode()).hexdigest()
    return db.execute(
        "SELECT s.end_reason FROM sessions s JOIN refresh_tokens r ON r.family_id = s.id "
        "WHERE r.token_hash = ?",
        [token_hash],
    ).fetchone()[0]


def test_logout_ends_the_sessions_access_tokens_at_once(client, world, db):
    session = _login(client, "dispatcher")
    other = _login(client, "dispatcher")
    assert client.get(ME, headers=_bearer(session)).status_code == 200
    out = client.post(f"{API}/auth/logout", json={"refresh_token": session["refresh_token"]})
    assert out.status_code == 204
    refused = client.get(ME, headers=_bearer(session))
    assert _refusal(refused) == (401, "invalid_token", "session_ended")
    # The user's other session (another browser, another phone) is not touched.
    assert client.get(ME, headers=_bearer(other)).status_code == 200
    assert (_end_reason(db, session), _end_reason(db, other)) == ("logout", None)


def test_a_reused_refresh_token_ends_every_access_token_of_its_family(client, world, db):
    first = _login(client, "agent1", "phone-agent1")
    rotated = client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    second = rotated.json
    assert client.get(ME, headers=_bearer(second, "phone-agent1")).status_code == 200
    # The spent token comes back (a stolen copy, or a replay): the whole family ends.
    reused = client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.json["error"]["code"] == "refresh_token_reused"
    for pair in (first, second):
        refused = client.get(ME, headers=_bearer(pair, "phone-agent1"))
        assert _refusal(refused) == (401, "invalid_token", "session_ended")
    assert _end_reason(db, second) == "refresh_token_reused"


def test_revoking_a_device_ends_its_sessions_and_the_phone_is_told_to_wipe(client, auth, world, db):
    phone = _login(client, "agent1", "phone-agent1")
    tablet = _login(client, "agent1")  # a second phone, enrolled at login
    revoked = client.post(
        f"{API}/devices/phone-agent1/revoke", json={"reason": "lost"}, headers=auth.headers("admin")
    )
    assert revoked.status_code == 200
    refused = client.get(ME, headers=_bearer(phone, "phone-agent1"))
    assert refused.status_code == 401 and refused.json["error"]["code"] == "device_revoked"
    assert client.get(ME, headers=_bearer(tablet, tablet["device_id"])).status_code == 200
    assert (_end_reason(db, phone), _end_reason(db, tablet)) == ("device_revoked", None)


def test_disabling_an_account_ends_its_sessions_for_good(client, auth, world, db):
    session = _login(client, "dispatcher")
    admin = auth.headers("admin")
    user_id = world.users["dispatcher"]
    disabled = client.post(f"{API}/users/{user_id}/disable", json={"reason": "left"}, headers=admin)
    assert disabled.status_code == 200 and disabled.json["active"] is False
    refused = client.get(ME, headers=_bearer(session))
    assert _refusal(refused) == (401, "invalid_token", "account_changed")
    stale = client.post(f"{API}/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert stale.status_code == 401
    # Enabling the account again does not bring old sessions back: a new login is needed.
    enabled = client.post(f"{API}/users/{user_id}/enable", json={}, headers=admin)
    assert enabled.status_code == 200 and enabled.json["active"] is True
    refused = client.get(ME, headers=_bearer(session))
    assert _refusal(refused) == (401, "invalid_token", "session_ended")
    assert _end_reason(db, session) == "user_disabled"
    assert client.get(ME, headers=_bearer(_login(client, "dispatcher"))).status_code == 200
    actions = db.execute(
        "SELECT action, details FROM staff_audit "
        "WHERE action IN ('user_disabled', 'user_enabled') ORDER BY id"
    ).fetchall()
    assert [a for a, _ in actions] == ["user_disabled", "user_enabled"]
    # Two sessions: the world's own login of the dispatcher, and this test's.
    assert json.loads(actions[0][1]) == {"reason": "left", "sessions_ended": 2}


def test_an_admin_cannot_disable_itself_and_unknown_users_are_404(client, auth, world):
    admin = auth.headers("admin")
    itself = client.post(f"{API}/users/{world.users['admin']}/disable", json={}, headers=admin)
    assert itself.status_code == 409 and itself.json["error"]["field"] == "user_id"
    assert client.post(f"{API}/users/999999/disable", json={}, headers=admin).status_code == 404
    assert client.get(ME, headers=admin).status_code == 200


def test_changing_a_password_ends_every_session_and_wrong_ones_are_throttled(client, world, db):
    session = _login(client, "dispatcher")
    wrong = {"username": "dispatcher", "password": "not-it-at-all", "new_password": "x" * 12}
    for _ in range(5):
        assert client.post(f"{API}/auth/password", json=wrong).status_code == 401
    assert client.post(f"{API}/auth/password", json=wrong).status_code == 429
    elsewhere = {"REMOTE_ADDR": "198.51.100.7"}
    changed = client.post(
        f"{API}/auth/password",
        json={"username": "dispatcher", "password": PASSWORD, "new_password": "brand-new-secret"},
        environ_base=elsewhere,
    )
    assert changed.status_code == 204
    refused = client.get(ME, headers=_bearer(session))
    assert _refusal(refused) == (401, "invalid_token", "session_ended")
    assert _end_reason(db, session) == "password_changed"
    new = client.post(
        f"{API}/auth/login",
        json={"username": "dispatcher", "password": "brand-new-secret"},
        environ_base=elsewhere,
    )
    assert new.status_code == 200
