"""The account lifecycle an admin runs: edit, reset a password, list and register phones,
retire a lost one, disable and enable (issue 10; disabling is in tests/api/test_sessions.py)."""

from __future__ import annotations

from tests.conftest import PASSWORD

API = "/api/v1"


def _login(client, username: str, password: str = PASSWORD, device_id: str | None = None):
    body = {"username": username, "password": password}
    if device_id:
        body["device_id"] = device_id
    return client.post(f"{API}/auth/login", json=body)


def test_an_admin_edits_an_agents_profile_but_never_a_role(client, auth, world, db):
    admin = auth.headers("admin")
    agent1 = world.users["agent1"]
    edited = client.patch(
        f"{API}/users/{agent1}",
        json={"display_name": "Li Wei", "region": "Pudong", "home_lat": 31.3, "home_lon": 121.5},
        headers=admin,
    )
    assert edited.status_code == 200, edited.json
    assert edited.json["display_name"] == "Li Wei"
    assert edited.json["agent"] == {
        "badge_number": "B-1",
        "region": "Pudong",
        "home_lat": 31.3,
        "home_lon": 121.5,
        "time_zone": "Asia/Shanghai",
    }
    assert (
        client.patch(f"{API}/users/{agent1}", json={"role": "admin"}, headers=admin).status_code
        == 422
    )
    taken = client.patch(f"{API}/users/{agent1}", json={"badge_number": "B-2"}, headers=admin)
    assert taken.status_code == 409 and taken.json["error"]["field"] == "badge_number"
    half = client.patch(f"{API}/users/{agent1}", json={"home_lon": None}, headers=admin)
    assert half.status_code == 422 and half.json["error"]["field"] == "home_lat"
    staff = client.patch(
        f"{API}/users/{world.users['dispatcher']}", json={"region": "x"}, headers=admin
    )
    assert staff.status_code == 422 and staff.json["error"]["field"] == "region"
    assert client.patch(f"{API}/users/999999", json={}, headers=admin).status_code == 404
    logged = db.execute(
        "SELECT details FROM staff_audit WHERE action = 'user_updated' AND target_id = ?",
        [str(agent1)],
    ).fetchall()
    assert logged == [('{"fields": ["display_name", "home_lat", "home_lon", "region"]}',)]


def test_a_reset_password_must_be_replaced_at_the_next_login(client, auth, world):
    old_session = _login(client, "dispatcher").json
    reset = client.post(
        f"{API}/users/{world.users['dispatcher']}/password-reset",
        json={"reason": "forgot it"},
        headers=auth.headers("admin"),
    )
    assert reset.status_code == 200, reset.json
    temporary = reset.json["temporary_password"]
    assert reset.json["grant"] is None and reset.json["expires_at"]
    # The old password and the old sessions are gone at once.
    stale = client.get(
        f"{API}/me", headers={"Authorization": f"Bearer {old_session['access_token']}"}
    )
    assert stale.status_code == 401
    assert _login(client, "dispatcher").status_code == 401
    forced = _login(client, "dispatcher", temporary)
    assert forced.status_code == 403 and forced.json["error"]["code"] == "password_change_required"
    changed = client.post(
        f"{API}/auth/password",
        json={"username": "dispatcher", "password": temporary, "new_password": "mine-again-123"},
    )
    assert changed.status_code == 204
    assert _login(client, "dispatcher", "mine-again-123").status_code == 200
    own = client.post(
        f"{API}/users/{world.users['admin']}/password-reset", json={}, headers=auth.headers("admin")
    )
    assert own.status_code == 409


def test_an_admin_cannot_reset_a_privacy_officer_into_its_hands(client, auth, world):
    privacy = world.users["privacy"]
    reset = client.post(
        f"{API}/users/{privacy}/password-reset", json={}, headers=auth.headers("admin")
    )
    assert reset.status_code == 200
    assert reset.json["temporary_password"] is None
    grant = reset.json["grant"]
    assert (grant["kind"], grant["status"]) == ("privacy_officer_reset", "pending")
    # Until another privacy officer decides, the officer's own password still works ...
    assert _login(client, "privacy").status_code == 200
    # ... and the officer cannot approve its own reset.
    own = client.post(
        f"{API}/role-grants/{grant['id']}/approve", json={}, headers=auth.headers("privacy")
    )
    assert own.status_code == 403
    again = client.post(
        f"{API}/users/{privacy}/password-reset", json={}, headers=auth.headers("admin")
    )
    assert again.status_code == 409


def test_an_admin_registers_lists_and_retires_an_agents_phones(client, auth, world, clock):
    admin, agent1 = auth.headers("admin"), world.users["agent1"]
    assert client.get(f"{API}/me", headers=auth.headers("agent1")).status_code == 200
    spare = client.post(f"{API}/users/{agent1}/devices", json={}, headers=admin)
    assert spare.status_code == 201
    listed = client.get(f"{API}/users/{agent1}/devices", headers=auth.headers("dispatcher"))
    assert listed.status_code == 200
    by_id = {d["id"]: d for d in listed.json}
    assert set(by_id) == {"phone-agent1", spare.json["id"]}
    assert by_id["phone-agent1"]["last_seen_at"] is not None
    assert by_id[spare.json["id"]]["last_seen_at"] is None
    # The phone is lost: retiring it ends its sessions and tells it to wipe.
    retired = client.post(
        f"{API}/devices/phone-agent1/revoke", json={"reason": "lost"}, headers=admin
    )
    assert retired.status_code == 200 and retired.json["status"] == "revoked"
    refused = client.get(f"{API}/me", headers=auth.headers("agent1"))
    assert refused.status_code == 401 and refused.json["error"]["details"]["wipe"] is True
    # The agent carries on with the spare phone the admin registered.
    assert _login(client, "agent1", device_id=spare.json["id"]).status_code == 200
    assert client.get(f"{API}/users/999999/devices", headers=admin).status_code == 404
