"""Login throttling slows guessing without locking the rightful user out (docs/security.md).

The attacks of the security review: five wrong passwords for an agent used to make its right
password answer 429 for 15 minutes, and twenty failures from one address used to lock out
every user behind it.
"""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD

LOGIN = "/api/v1/auth/login"
ATTACKER = "203.0.113.66"
AGENT_HOME = "198.51.100.19"


def _login(client, username: str, password: str, address: str, device_id: str | None = None):
    body = {"username": username, "password": password}
    if device_id:
        body["device_id"] = device_id
    return client.post(LOGIN, json=body, environ_base={"REMOTE_ADDR": address})


def _wrong(client, username: str, address: str = ATTACKER):
    return _login(client, username, "wrong-password-123", address)


def _failures(db, username: str) -> int:
    sql = "SELECT count(*) FROM login_failures WHERE username = ?"
    return db.execute(sql, [username]).fetchone()[0]


def test_guessing_an_agents_password_does_not_lock_the_agent_out(client, world, db):
    for _ in range(5):
        assert _wrong(client, "agent1").status_code == 401
    # The guesser's pair now waits, and is told how long; its password is not even checked.
    held = _wrong(client, "agent1")
    assert held.status_code == 429 and held.json["error"]["code"] == "rate_limited"
    assert held.headers["Retry-After"] == "1"
    assert _failures(db, "agent1") == 5
    # The agent, from its own address, logs in with its right password at once.
    rightful = _login(client, "agent1", PASSWORD, AGENT_HOME, "phone-agent1")
    assert rightful.status_code == 200, rightful.json


def test_failures_from_one_address_do_not_lock_out_the_other_users_behind_it(make_app, world, db):
    client = make_app(LOGIN_MAX_FAILURES_PER_ADDRESS=20).test_client()
    for n in range(25):  # one guess each for 25 usernames, all from one office
        response = _wrong(client, f"user{n:02d}")
        assert response.status_code == 401, (n, response.json)
    # Colleagues behind the same address who have not failed log in.
    assert _login(client, "dispatcher", PASSWORD, ATTACKER).status_code == 200
    assert _login(client, "agent2", PASSWORD, ATTACKER, "phone-agent2").status_code == 200
    # The sprayer's second round is held back: those pairs failed and the address is over its cap.
    second = _wrong(client, "user03")
    assert second.status_code == 429
    assert 0 < int(second.headers["Retry-After"]) <= 3600


def test_a_failing_pair_waits_twice_as_long_after_each_failure(client, world, clock):
    for _ in range(5):
        assert _wrong(client, "dispatcher").status_code == 401
    waits = []
    for _ in range(5):
        held = _wrong(client, "dispatcher")
        assert held.status_code == 429
        waits.append(int(held.headers["Retry-After"]))
        clock.advance(seconds=waits[-1])
        assert _wrong(client, "dispatcher").status_code == 401  # checked, and wrong again
    assert waits == [1, 2, 4, 8, 16]
    # Even the right password waits its turn from the guessing address...
    assert _login(client, "dispatcher", PASSWORD, ATTACKER).status_code == 429
    clock.advance(seconds=32)
    # ... and then gets in, which forgets this pair's failures.
    assert _login(client, "dispatcher", PASSWORD, ATTACKER).status_code == 200
    assert _wrong(client, "dispatcher").status_code == 401


def test_the_pair_back_off_is_capped_and_forgotten_after_a_quiet_window(make_app, world, clock):
    client = make_app(LOGIN_DELAY_MAX_S=60, LOGIN_FAILURE_WINDOW_S=600).test_client()
    for _ in range(12):
        clock.advance(seconds=61)  # past the capped wait, so each attempt is checked
        assert _wrong(client, "dispatcher").status_code == 401
    held = _wrong(client, "dispatcher")
    # Twelve failures in a row would mean 128 s; the cap holds it to 60 s.
    assert held.status_code == 429 and held.headers["Retry-After"] == "60"
    clock.advance(seconds=10)
    assert _wrong(client, "dispatcher").headers["Retry-After"] == "50"
    clock.advance(seconds=600)  # quiet for a window: the pair starts over with free attempts
    for _ in range(5):
        assert _wrong(client, "dispatcher").status_code == 401


def test_guessing_from_many_addresses_is_slowed_without_blocking_new_ones(make_app, world, clock):
    client = make_app(LOGIN_MAX_FAILURES_PER_USER=10).test_client()
    addresses = [f"192.0.2.{n}" for n in range(1, 11)]
    for address in addresses:
        assert _wrong(client, "privacy", address).status_code == 401
    # The account is over its cap: an address that already failed for it must wait the window.
    held = _wrong(client, "privacy", addresses[0])
    assert held.status_code == 429
    assert 3000 < int(held.headers["Retry-After"]) <= 3600
    # An address with no failure for it is still heard: one guess each, never a lock-out.
    assert _wrong(client, "privacy", "192.0.2.200").status_code == 401
    assert _wrong(client, "privacy", "192.0.2.200").status_code == 429
    assert _login(client, "privacy", PASSWORD, "192.0.2.201").status_code == 200
    clock.advance(hours=1)
    assert _wrong(client, "privacy", addresses[0]).status_code == 401


@pytest.mark.parametrize("username", ["dispatcher", "nobody-at-all"])
def test_unknown_and_known_usernames_are_throttled_alike(client, world, username):
    codes = [_wrong(client, username).status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]
