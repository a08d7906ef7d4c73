"""Limits: rate limits with Retry-After, oversized and absurdly nested bodies."""

from server import create_app
from tests.conftest import FixedClock


def _limited_app(tmp_path, clock, **settings):
    return create_app(
        {
            "DATABASE": str(tmp_path / "l.db"),
            "CLOCK": clock,
            "PASSWORD_TIME_COST": 1,
            "PASSWORD_MEMORY_COST_KIB": 1024,
            **settings,
        }
    )


STRANGER = {"REMOTE_ADDR": "203.0.113.9"}


def test_a_strangers_requests_with_a_phones_id_do_not_throttle_that_phone(make_app, world, auth):
    victim = auth.headers("agent1")  # logged in before the limits apply
    client = make_app(RATE_PER_DEVICE_PER_MIN=240, RATE_BURST=60).test_client()
    # The review's attack: 62 token-less requests carrying the victim's device id.
    spoofed = {"X-Device-Id": "phone-agent1"}
    for _ in range(62):
        response = client.get("/api/v1/health", headers=spoofed, environ_base=STRANGER)
        assert response.status_code == 200
    assert client.get("/api/v1/me", headers=victim).status_code == 200
    # Token-less calls are answered for what they are (401), not with the victim's 429.
    refused = client.get("/api/v1/me", headers=spoofed, environ_base=STRANGER)
    assert refused.status_code == 401 and refused.json["error"]["code"] == "not_authenticated"


def test_an_authenticated_phone_is_limited_on_its_own_allowance(make_app, world, auth, clock):
    agent1, agent2 = auth.headers("agent1"), auth.headers("agent2")
    dispatcher = auth.headers("dispatcher")
    client = make_app(RATE_PER_DEVICE_PER_MIN=60, RATE_BURST=3).test_client()
    codes = [client.get("/api/v1/me", headers=agent1).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = client.get("/api/v1/me", headers=agent1)
    assert refused.json["error"]["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == "1"
    # Other phones and staff users have their own allowance; so do calls without a token.
    assert client.get("/api/v1/me", headers=agent2).status_code == 200
    assert client.get("/api/v1/me", headers=dispatcher).status_code == 200
    no_token = client.get("/api/v1/me", headers={"X-Device-Id": "phone-agent1"})
    assert no_token.status_code == 401
    clock.advance(seconds=1)
    assert client.get("/api/v1/me", headers=agent1).status_code == 200


def test_refused_tokens_spend_the_address_allowance_valid_ones_do_not(make_app, world, auth):
    agent = auth.headers("agent1")
    client = make_app(RATE_PER_ADDRESS_PER_MIN=30, RATE_BURST=1).test_client()
    forged = {"Authorization": "Bearer not-a-jwt"}
    codes = [client.get("/api/v1/me", headers=forged).status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]  # the address bucket holds five bursts
    # A phone behind the same address with a valid token is not held back by them.
    assert client.get("/api/v1/me", headers=agent).status_code == 200


def test_address_rate_limit(tmp_path):
    clock = FixedClock()
    client = _limited_app(tmp_path, clock, RATE_PER_ADDRESS_PER_MIN=30, RATE_BURST=1).test_client()
    codes = [client.get("/api/v1/health").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]  # the address bucket holds five bursts


def test_oversized_and_nested_bodies_are_refused_cheaply(world, client, auth):
    headers = auth.headers("agent1")
    big = client.post(
        "/api/v1/sync/push",
        data=b"x" * (9 * 1024 * 1024),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert big.status_code == 413
    assert big.json["error"]["code"] == "payload_too_large"
    deep = "[" * 100_000 + "]" * 100_000
    nested = client.post(
        "/api/v1/sync/push", data=deep, headers={**headers, "Content-Type": "application/json"}
    )
    assert nested.status_code == 400
    assert nested.json["error"]["code"] in ("too_deeply_nested", "validation_failed")


def test_behind_a_proxy_the_forwarded_client_address_is_limited(tmp_path):
    clock = FixedClock()
    app = _limited_app(tmp_path, clock, RATE_PER_ADDRESS_PER_MIN=30, RATE_BURST=1, PROXY_HOPS=1)
    client = app.test_client()
    alice = {"X-Forwarded-For": "203.0.113.7"}
    codes = [client.get("/api/v1/health", headers=alice).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    bob = {"X-Forwarded-For": "198.51.100.9"}
    assert client.get("/api/v1/health", headers=bob).status_code == 200
