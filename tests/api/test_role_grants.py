"""Separation of duties: an admin cannot make itself an auditor (docs/security.md).

Before, an admin could create a privacy-officer account with a password of its choosing,
log in as it and read the exposure ledger. Now an admin only requests one: the account is
disabled and holds no password the admin knows until an existing privacy officer grants the
access, which answers a one-time code to that officer alone; the new officer must replace it.
"""

from __future__ import annotations

from tests.conftest import PASSWORD

API = "/api/v1"
NEW_PASSWORD = "a-password-of-my-own"


def _login(client, username: str, password: str):
    return client.post(f"{API}/auth/login", json={"username": username, "password": password})


def _request_officer(client, auth, username: str = "auditor2") -> tuple[int, int]:
    created = client.post(
        f"{API}/users",
        json={"username": username, "role": "privacy_officer"},
        headers=auth.headers("admin"),
    )
    assert created.status_code == 201, created.json
    assert created.json["active"] is False
    pending = client.get(
        f"{API}/role-grants", query_string={"status": "pending"}, headers=auth.headers("admin")
    ).json
    grant = next(g for g in pending if g["user_id"] == created.json["id"])
    return created.json["id"], grant["id"]


def _approve(client, auth, grant_id: int):
    return client.post(
        f"{API}/role-grants/{grant_id}/approve",
        json={"note": "checked with HR"},
        headers=auth.headers("privacy"),
    )


def test_an_admin_cannot_create_a_privacy_officer_it_can_log_in_as(client, auth, world):
    admin = auth.headers("admin")
    # The review's attack: create an auditor with a known password, then read the ledger.
    with_password = client.post(
        f"{API}/users",
        json={"username": "auditor2", "password": PASSWORD, "role": "privacy_officer"},
        headers=admin,
    )
    assert with_password.status_code == 422 and with_password.json["error"]["field"] == "password"
    user_id, grant_id = _request_officer(client, auth)
    assert _login(client, "auditor2", PASSWORD).status_code == 401
    # Nor can the admin switch it on, or decide the request itself.
    enable = client.post(f"{API}/users/{user_id}/enable", json={}, headers=admin)
    assert enable.status_code == 409 and enable.json["error"]["field"] == "user_id"
    approve = client.post(f"{API}/role-grants/{grant_id}/approve", json={}, headers=admin)
    assert approve.status_code == 403
    # And nothing the admin can read holds the code that will open it.
    grants = client.get(f"{API}/role-grants", headers=admin).json
    assert all("one_time_code" not in g for g in grants)


def test_a_privacy_officer_grants_the_access_and_the_officer_sets_its_password(
    client, auth, world, db
):
    user_id, grant_id = _request_officer(client, auth)
    approved = _approve(client, auth, grant_id)
    assert approved.status_code == 200, approved.json
    body = approved.json
    assert (body["status"], body["decided_by_username"], body["requested_by_username"]) == (
        "approved",
        "privacy",
        "admin",
    )
    code = body["one_time_code"]
    # The code opens nothing but the password change.
    first = _login(client, "auditor2", code)
    assert first.status_code == 403 and first.json["error"]["code"] == "password_change_required"
    same = client.post(
        f"{API}/auth/password",
        json={"username": "auditor2", "password": code, "new_password": code},
    )
    assert same.status_code == 422
    changed = client.post(
        f"{API}/auth/password",
        json={"username": "auditor2", "password": code, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 204
    assert _login(client, "auditor2", code).status_code == 401  # used up
    session = _login(client, "auditor2", NEW_PASSWORD)
    assert session.status_code == 200 and session.json["user"]["role"] == "privacy_officer"
    headers = {"Authorization": f"Bearer {session.json['access_token']}"}
    assert client.get(f"{API}/audit/verify", headers=headers).status_code == 200
    # Every step is in the staff log the privacy officers read.
    log = client.get(f"{API}/audit/staff-actions", headers=auth.headers("privacy")).json["items"]
    steps = [(e["action"], e["username"]) for e in log if e["target_id"] == str(user_id)]
    assert steps == [
        ("user_created", "admin"),
        ("role_grant_requested", "admin"),
        ("role_grant_approved", "privacy"),
        ("password_changed", "auditor2"),
        ("login", "auditor2"),
    ]


def test_a_rejected_request_leaves_the_account_disabled(client, auth, world):
    user_id, grant_id = _request_officer(client, auth)
    rejected = client.post(
        f"{API}/role-grants/{grant_id}/reject",
        json={"note": "no such hire"},
        headers=auth.headers("privacy"),
    )
    assert rejected.status_code == 200 and rejected.json["status"] == "rejected"
    again = _approve(client, auth, grant_id)
    assert again.status_code == 409
    enable = client.post(f"{API}/users/{user_id}/enable", json={}, headers=auth.headers("admin"))
    assert enable.status_code == 409


def test_the_one_time_code_expires(client, auth, world, clock):
    _, grant_id = _request_officer(client, auth)
    code = _approve(client, auth, grant_id).json["one_time_code"]
    clock.advance(hours=73)
    expired = client.post(
        f"{API}/auth/password",
        json={"username": "auditor2", "password": code, "new_password": NEW_PASSWORD},
    )
    assert expired.status_code == 401 and expired.json["error"]["code"] == "invalid_credentials"


def test_deciding_an_unknown_request_is_404(client, auth, world):
    assert _approve(client, auth, 999999).status_code == 404
