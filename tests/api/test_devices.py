"""Device enrolment: ids are minted by the server, so no one can squat a colleague's phone
id or probe which ids exist (docs/security.md).

Before, with automatic enrolment, whoever sent a device id first owned it: an agent could
log in with a colleague's phone id before the colleague did, locking that phone out, and
the answers told a registered id (403 "registered to another user") from a free one (200).
"""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD

API = "/api/v1"
LOGIN = f"{API}/auth/login"


def _login(client, username: str, device_id: str | None = None):
    body = {"username": username, "password": PASSWORD}
    if device_id is not None:
        body["device_id"] = device_id
    return client.post(LOGIN, json=body)


def _new_agent(client, auth, username: str, badge: str) -> int:
    response = client.post(
        f"{API}/users",
        json={"username": username, "password": PASSWORD, "role": "agent", "badge_number": badge},
        headers=auth.headers("admin"),
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


def _devices(db, user_id: int) -> list[str]:
    rows = db.execute("SELECT id FROM devices WHERE user_id = ? ORDER BY rowid", [user_id])
    return [row[0] for row in rows]


def test_a_new_phone_enrols_under_an_id_the_server_mints(client, auth, world, db):
    first = _login(client, "agent1")
    assert first.status_code == 200, first.json
    minted = first.json["device_id"]
    assert minted.startswith("dev-") and len(minted) >= 28
    assert _devices(db, world.users["agent1"]) == ["phone-agent1", minted]
    headers = {"Authorization": f"Bearer {first.json['access_token']}", "X-Device-Id": minted}
    assert client.get(f"{API}/me/day", headers=headers).status_code == 200
    # The phone logs in again with the id it was given: no second enrolment.
    again = _login(client, "agent1", minted)
    assert again.status_code == 200 and again.json["device_id"] == minted
    assert len(_devices(db, world.users["agent1"])) == 2
    enrolled = db.execute(
        "SELECT username, target_id FROM staff_audit WHERE action = 'device_enrolled'"
    ).fetchall()
    assert enrolled == [("agent1", minted)]


def test_an_agent_cannot_squat_a_colleagues_phone_id(client, auth, world, db):
    newcomer = _new_agent(client, auth, "agent19", "B-19")
    # agent2 tries to claim the id agent19's phone is expected to use, before agent19 logs in.
    squat = _login(client, "agent2", "phone-agent19")
    assert squat.status_code == 403 and squat.json["error"]["code"] == "device_not_allowed"
    assert db.execute("SELECT count(*) FROM devices WHERE id = 'phone-agent19'").fetchone()[0] == 0
    # agent19's phone enrols (it never chose its id) and works.
    enrolled = _login(client, "agent19")
    assert enrolled.status_code == 200
    assert _devices(db, newcomer) == [enrolled.json["device_id"]]
    # agent2 learning that id later does not let it in either.
    assert _login(client, "agent2", enrolled.json["device_id"]).status_code == 403


def test_unknown_and_someone_elses_ids_get_the_same_answer(client, auth, world):
    client.post(f"{API}/devices/phone-agent1/revoke", json={}, headers=auth.headers("admin"))
    answers = []
    attempts = (
        ("agent1", "phone-agent2"),  # another agent's active phone
        ("agent2", "phone-agent1"),  # another agent's revoked phone
        ("agent2", "phone-nobody-has"),  # no such phone
    )
    for username, device in attempts:
        body = _login(client, username, device).json
        answers.append((body["error"]["code"], body["error"]["message"], body["error"]["field"]))
        assert body["error"]["details"] == {}
    assert len(set(answers)) == 1, answers
    assert answers[0] == ("device_not_allowed", "this device is not registered to you", "device_id")
    # The owner of the revoked phone is still told to wipe it.
    own = _login(client, "agent1", "phone-agent1")
    assert own.status_code == 401 and own.json["error"]["details"]["wipe"] is True


def test_admin_enrolment_works_end_to_end(make_app, auth, world, db):
    client = make_app(DEVICE_ENROLMENT="admin").test_client()
    newcomer = _new_agent(client, auth, "agent7", "B-7")
    refused = _login(client, "agent7")
    assert refused.status_code == 422 and refused.json["error"]["field"] == "device_id"
    assert _login(client, "agent7", "asset-0007").status_code == 403
    admin = auth.headers("admin")
    registered = client.post(
        f"{API}/users/{newcomer}/devices", json={"device_id": "asset-0007"}, headers=admin
    )
    assert registered.status_code == 201, registered.json
    assert registered.json["username"] == "agent7" and registered.json["status"] == "active"
    login = _login(client, "agent7", "asset-0007")
    assert login.status_code == 200, login.json
    headers = {"Authorization": f"Bearer {login.json['access_token']}", "X-Device-Id": "asset-0007"}
    assert client.get(f"{API}/me", headers=headers).json["device_id"] == "asset-0007"
    # Without an id the server mints one; an id in use, or a user who is no agent, is refused.
    minted = client.post(f"{API}/users/{newcomer}/devices", json={}, headers=admin)
    assert minted.status_code == 201 and minted.json["id"].startswith("dev-")
    taken = client.post(
        f"{API}/users/{newcomer}/devices", json={"device_id": "phone-agent1"}, headers=admin
    )
    assert taken.status_code == 409 and taken.json["error"]["field"] == "device_id"
    staff = client.post(f"{API}/users/{world.users['dispatcher']}/devices", json={}, headers=admin)
    assert staff.status_code == 422 and staff.json["error"]["field"] == "user_id"
    assert client.post(f"{API}/users/999999/devices", json={}, headers=admin).status_code == 404
    assert _devices(db, newcomer)[0] == "asset-0007"


@pytest.mark.parametrize("device_id", ["short", "has space 123", "x" * 129])
def test_a_malformed_device_id_is_refused_before_anything_else(client, world, device_id):
    response = _login(client, "agent1", device_id)
    assert response.status_code == 422 and response.json["error"]["field"] == "device_id"


def test_claim_enrolment_registers_a_client_chosen_id_once(make_app, world, db):
    """`claim` (legacy clients, load generators): the first login naming an unknown id owns
    it; a colleague naming the same id afterwards gets the same 403 as ever."""
    client = make_app(DEVICE_ENROLMENT="claim").test_client()

    def login(username: str):
        return client.post(
            "/api/v1/auth/login",
            json={"username": username, "password": PASSWORD, "device_id": "bench-phone-0001"},
        )

    first = login("agent1")
    assert first.status_code == 200, first.json
    assert first.json["device_id"] == "bench-phone-0001"
    owner = db.execute("SELECT user_id FROM devices WHERE id = 'bench-phone-0001'").fetchone()
    assert owner[0] == world.users["agent1"]
    assert login("agent1").status_code == 200  # its own phone, again
    squatter = login("agent2")
    assert squatter.status_code == 403 and squatter.json["error"]["code"] == "device_not_allowed"
