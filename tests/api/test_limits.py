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


def test_device_rate_limit_answers_429_with_retry_after(tmp_path):
    clock = FixedClock()
    client = _limited_app(tmp_path, clock, RATE_PER_DEVICE_PER_MIN=60, RATE_BURST=3).test_client()
    headers = {"X-Device-Id": "phone-greedy-1"}
    codes = [client.get("/api/v1/health", headers=headers).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = client.get("/api/v1/health", headers=headers)
    assert refused.json["error"]["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == "1"
    assert client.get("/api/v1/health", headers={"X-Device-Id": "phone-other-1"}).status_code == 200
    clock.advance(seconds=1)
    assert client.get("/api/v1/health", headers=headers).status_code == 200


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
