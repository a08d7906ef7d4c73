"""The golden corpus's app and the API calls made on its world: an app on a fixed clock and a
fixed signing key, a World holding the ids the server gave, and the dispatcher's and the
phones' calls (uploads, cancellations, reassignments, case flags, consent withdrawals).

Every call carries a request id of our own, so nothing the server records is random.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .plans import AGENTS, PASSWORD, VisitPlan, blob_bytes


class FixedClock:
    """The app's clock; the driver moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def signing_key_pem() -> str:
    """A fixed Ed25519 key, so receipts (deterministic signatures) are the same every run."""
    seed = hashlib.sha256(b"doorstep golden push corpus").digest()
    key = Ed25519PrivateKey.from_private_bytes(seed)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@dataclass
class World:
    """The built world: the app, its clock, and the ids the server gave."""

    app: Any
    clock: FixedClock
    profile: str
    client: Any = None
    users: dict[str, int] = field(default_factory=dict)
    cases: dict[int, int] = field(default_factory=dict)  # case number -> case id
    borrowers: dict[int, int] = field(default_factory=dict)  # case number -> borrower id
    visits: dict[str, int] = field(default_factory=dict)  # visit key -> visit id
    plans: dict[str, VisitPlan] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)  # visit key -> agent now
    versions: dict[str, int] = field(default_factory=dict)
    consents: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # device or staff name -> token
    blobs: dict[str, dict[str, bytes]] = field(default_factory=dict)  # agent -> name -> bytes
    requests: int = 0

    def request_id(self, what: str) -> str:
        """A request id of our own (the server would draw a random one otherwise)."""
        self.requests += 1
        return f"golden-{self.requests:05d}-{what}"[:64]

    def call(self, method: str, path: str, who: str, expect: tuple[int, ...], **kwargs) -> Any:
        """One API call as `who` that must answer one of `expect`; the answer's JSON."""
        status, answer = self.attempt(method, path, who, **kwargs)
        assert status in expect, (method, path, status, answer)
        return answer

    def attempt(self, method: str, path: str, who: str, **kwargs) -> tuple[int, Any]:
        """One API call as `who` (a staff name or a device id): status and JSON."""
        headers = {"Authorization": f"Bearer {self.tokens[who]}", **kwargs.pop("headers", {})}
        if who.startswith("phone-"):
            headers["X-Device-Id"] = who
        headers["X-Request-Id"] = self.request_id(path.rsplit("/", 1)[-1])
        response = self.client.open(path, method=method, headers=headers, **kwargs)
        return response.status_code, response.get_json()


def login(world: World, username: str, device_id: str | None = None) -> str:
    body = {"username": username, "password": PASSWORD}
    if device_id:
        body["device_id"] = device_id
    response = world.client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 200, response.json
    return response.json["access_token"]


def upload(world: World, agent: str, name: str) -> None:
    """An agent's first phone uploads one of its blobs."""
    data = blob_bytes(agent, name)
    phone = next(a[2][0] for a in AGENTS if a[0] == agent)
    world.call(
        "PUT",
        f"/api/v1/attachments/{hashlib.sha256(data).hexdigest()}",
        phone,
        (200, 201),
        data=data,
        headers={"Content-Type": "image/png"},
    )
    world.blobs.setdefault(agent, {})[name] = data


def _version(world: World, key: str) -> int:
    """The visit's version now (stored reports move it on)."""
    return world.call("GET", f"/api/v1/visits/{world.visits[key]}", "dispatcher", (200,))["version"]


def cancel(world: World, key: str) -> int:
    """The dispatcher cancels a visit (refused once the visit is completed); the status."""
    status, _ = world.attempt(
        "POST",
        f"/api/v1/visits/{world.visits[key]}/cancel",
        "dispatcher",
        json={"version": _version(world, key), "reason": "golden corpus"},
    )
    return status


def reassign(world: World, key: str) -> int:
    """The dispatcher hands a visit to the next agent (refused once it is completed)."""
    names = [a[0] for a in AGENTS]
    new = names[(names.index(world.owner[key]) + 1) % len(names)]
    status, _ = world.attempt(
        "PATCH",
        f"/api/v1/visits/{world.visits[key]}",
        "dispatcher",
        json={"version": _version(world, key), "agent_id": world.users[new]},
    )
    if status == 200:
        world.owner[key] = new
    return status


def flag_case(world: World, n: int, flag: str) -> None:
    """The dispatcher sets a flag on a case (do-not-visit and legal hold cancel its visits)."""
    case_id = world.cases[n]
    current = world.call("GET", f"/api/v1/cases/{case_id}", "dispatcher", (200,))
    world.call(
        "PATCH",
        f"/api/v1/cases/{case_id}",
        "dispatcher",
        (200,),
        json={"version": current["version"], "flags": {flag: True}, "reason": "golden corpus"},
    )


def withdraw_consent(world: World, key: str, n: int) -> None:
    world.call(
        "POST",
        f"/api/v1/borrowers/{world.borrowers[n]}/requests/{world.consents[key]}/withdraw",
        "dispatcher",
        (200,),
        json={"source": "phone"},
    )


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
