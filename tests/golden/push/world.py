"""The golden corpus's world: an app on a fixed clock and a fixed signing key, and the cases,
borrowers, agents, phones, visits, consents and blobs the corpus pushes against.

Everything is built through the API (as a dispatcher and an admin would), so the world
does not depend on how the store is laid out. Nothing here is random: the same code gives
the same world, ids included.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server import create_app
from server.runtime import Caller
from server.services import accounts as account_service
from server.storage.connection import open_db

PASSWORD = "golden-corpus-password"
DAY = date(2026, 11, 24)
# The world is planned at 14:00 UTC on DAY; the phones push from 15:00 UTC on, when the
# day is over in Asia and under way in Europe and America.
SETUP_AT = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
PUSH_FROM = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)

# Borrower time zones, with a home position in each.
ZONES: tuple[tuple[str, float, float], ...] = (
    ("Asia/Shanghai", 31.20, 121.40),
    ("Asia/Kolkata", 22.57, 88.36),
    ("Europe/Berlin", 52.52, 13.40),
    ("America/New_York", 40.71, -74.00),
)
# username, badge, phones
AGENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("agent1", "B-1001", ("phone-agent1-a", "phone-agent1-b")),
    ("agent2", "B-1002", ("phone-agent2",)),
    ("agent3", "B-1003", ("phone-agent3",)),
    ("agent4", "B-1004", ("phone-agent4",)),
)
CASES = 96
PURPOSES = ("home_visit", "follow_up", "agreement_signing", "workplace_visit")
WINDOWS = ((None, None), ("09:00", "11:00"), ("14:00", "17:00"))
# Changes made after planning, while the phones are offline (case numbers).
CANCELLED_AT_SETUP = (3, 17)
REASSIGNED_AT_SETUP = (5, 21)
CASE_FLAGS_AT_SETUP = {6: "hardship", 26: "hardship", 7: "legal_hold", 8: "do_not_visit"}
# Changes made in the middle of the pushes (the driver applies them; case numbers).
# Visits tried midway: a completed one cannot be changed any more (the refusal is recorded).
CANCELLED_MIDWAY = ("c10-today", "c30-today", "c9-tomorrow", "c17-tomorrow")
REASSIGNED_MIDWAY = ("c2-today", "c14-today", "c13-tomorrow")
HARDSHIP_MIDWAY = (12,)


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


@dataclass(frozen=True)
class CasePlan:
    """One case as planned: where its borrower lives and what the server holds."""

    n: int
    zone: str
    home: tuple[float, float] | None
    national_id: str | None

    @property
    def external_id(self) -> str:
        return f"G-{self.n:04d}"


@dataclass(frozen=True)
class VisitPlan:
    """One visit as planned (agent is the first assignee)."""

    key: str
    case: CasePlan
    agent: str
    visit_date: date
    purpose: str
    window: tuple[str | None, str | None]
    notice_at: datetime | None  # None: no notice recorded

    def local(self, hour: int, minute: int = 0) -> datetime:
        """A moment on the visit's day, borrower local time, as UTC."""
        moment = datetime.combine(self.visit_date, time(hour, minute), ZoneInfo(self.case.zone))
        return moment.astimezone(UTC)


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


def case_plans() -> list[CasePlan]:
    """The corpus's cases: time zones in turn, a few without an ID number or a geocode."""
    plans = []
    for n in range(1, CASES + 1):
        zone, lat, lon = ZONES[n % len(ZONES)]
        home = None if n % 13 == 0 else (round(lat + n / 1000, 6), round(lon + n / 1000, 6))
        national_id = None if n % 11 == 0 else f"G{n:03d}1990{n:04d}X{n % 10}"
        plans.append(CasePlan(n, zone, home, national_id))
    return plans


def visit_plans(cases: list[CasePlan]) -> list[VisitPlan]:
    """A visit today for every case; yesterday's for some, tomorrow's (another agent) for
    others. Purposes, windows and notices in turn."""
    names = [a[0] for a in AGENTS]
    plans = []
    for case in cases:
        n = case.n
        agent = names[n % len(names)]
        purpose = PURPOSES[(n // 4) % len(PURPOSES)]
        notice_at: datetime | None = SETUP_AT - timedelta(days=2)
        if n % 5 == 0:
            notice_at = None
        today = VisitPlan(f"c{n}-today", case, agent, DAY, purpose, WINDOWS[n % 3], notice_at)
        if n % 7 == 0:  # notice recorded only at noon, after a morning arrival
            noon = datetime.combine(DAY, time(12, 0), ZoneInfo(case.zone)).astimezone(UTC)
            today = VisitPlan(
                today.key, case, agent, DAY, purpose, (None, None), min(noon, SETUP_AT)
            )
        plans.append(today)
        if n % 3 == 0:
            yesterday = DAY - timedelta(days=1)
            plans.append(
                VisitPlan(
                    f"c{n}-yesterday", case, agent, yesterday, "home_visit", (None, None), notice_at
                )
            )
        if n % 4 == 1:
            other = names[(n + 1) % len(names)]
            tomorrow = DAY + timedelta(days=1)
            plans.append(
                VisitPlan(
                    f"c{n}-tomorrow",
                    case,
                    other,
                    tomorrow,
                    "follow_up",
                    ("09:00", "12:00"),
                    notice_at,
                )
            )
    return plans


def _case_row(case: CasePlan) -> dict[str, Any]:
    row: dict[str, Any] = {
        "case_external_id": case.external_id,
        "borrower_external_id": f"GB-{case.n:04d}",
        "full_name": f"Golden Borrower {case.n}",
        "national_id": case.national_id,
        "phones": [f"1380000{case.n:04d}"],
        "home_address": f"{case.n} Corpus Street",
        "work_address": f"{case.n} Office Park",
        "employer": "Acme",
        "time_zone": case.zone,
        "product": "Personal loan",
        "overdue_amount": f"{1000 + case.n * 37}.50",
        "currency": "CNY",
        "days_past_due": 10 + case.n,
        "last_payment_date": "2026-09-01",
        "last_payment_amount": "300.00",
    }
    if case.home:
        row["home_lat"], row["home_lon"] = case.home
    return row


def blob_bytes(agent: str, name: str) -> bytes:
    """A small PNG-looking blob, different per agent and name."""
    return b"\x89PNG\r\n\x1a\n" + f"golden:{agent}:{name}".encode() * 4


def blob_sha(agent: str, name: str) -> str:
    return hashlib.sha256(blob_bytes(agent, name)).hexdigest()


# Blobs each agent uploads before pushing; `late-*` ones are uploaded midway (records that
# reference them answer retry until then); `never` is never uploaded.
UPLOADED = ("sig-borrower", "sig-agent", "photo-1", "photo-2")
UPLOADED_MIDWAY = ("late-photo", "late-sig")
NEVER_UPLOADED = ("never",)


def build_world(tmp: Path, profile: str) -> World:
    """An app on a fresh database under `tmp` with this compliance profile, and the world."""
    clock = FixedClock(SETUP_AT)
    app = create_app(
        {
            "DATABASE": str(tmp / f"golden-{profile}.db"),
            "CLOCK": clock,
            "SIGNING_KEY": signing_key_pem(),
            "COMPLIANCE_PROFILE": profile,
            "PASSWORD_TIME_COST": 1,
            "PASSWORD_MEMORY_COST_KIB": 1024,
            "DOORSTEP_ENV": "development",
            "RATE_PER_DEVICE_PER_MIN": 0,
            "RATE_PER_ADDRESS_PER_MIN": 0,
            # The clock runs through an afternoon: tokens outlive it, no re-login needed.
            "ACCESS_TOKEN_TTL_S": 7 * 24 * 3600,
        }
    )
    world = World(app=app, clock=clock, profile=profile, client=app.test_client())
    _accounts(world)
    _cases(world)
    _visits(world)
    _consents(world)
    _uploads(world, UPLOADED)
    _setup_changes(world)
    for _, _, phones in AGENTS:  # each phone takes its day's cards before going offline
        for phone in phones:
            world.call("GET", "/api/v1/sync/pull", phone, (200,))
    return world


def _login(world: World, username: str, device_id: str | None = None) -> str:
    body = {"username": username, "password": PASSWORD}
    if device_id:
        body["device_id"] = device_id
    response = world.client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 200, response.json
    return response.json["access_token"]


def _accounts(world: World) -> None:
    rt = world.app.extensions["doorstep"]
    conn = open_db(world.app.config["DATABASE"])
    try:
        world.users["admin"] = account_service.create_user(
            conn,
            rt,
            Caller(None, "golden-bootstrap", "test", "local", rt.clock()),
            {"username": "admin", "password": PASSWORD, "role": "admin"},
        )["id"]
    finally:
        conn.conn.close()
    world.tokens["admin"] = _login(world, "admin")
    created = world.call(
        "POST",
        "/api/v1/users",
        "admin",
        (201,),
        json={"username": "dispatcher", "password": PASSWORD, "role": "dispatcher"},
    )
    world.users["dispatcher"] = created["id"]
    world.tokens["dispatcher"] = _login(world, "dispatcher")
    for index, (name, badge, phones) in enumerate(AGENTS):
        body = {
            "username": name,
            "password": PASSWORD,
            "role": "agent",
            "badge_number": badge,
            "home_lat": 31.2 + index / 100,
            "home_lon": 121.4,
            "time_zone": "Asia/Shanghai",
        }
        world.users[name] = world.call("POST", "/api/v1/users", "admin", (201,), json=body)["id"]
        for phone in phones:
            world.call(
                "POST",
                f"/api/v1/users/{world.users[name]}/devices",
                "admin",
                (201,),
                json={"device_id": phone},
            )
            world.tokens[phone] = _login(world, name, phone)


def _import(world: World, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return world.call(
        "POST",
        "/api/v1/cases/import",
        "dispatcher",
        (200,),
        data="\n".join(json.dumps(r) for r in rows),
        headers={"Content-Type": "application/x-ndjson"},
    )


def _cases(world: World) -> None:
    plans = case_plans()
    report = _import(world, [_case_row(c) for c in plans])
    assert report["created"] == CASES, report
    conn = open_db(world.app.config["DATABASE"])
    try:
        by_external = {
            row["external_id"]: (row["id"], row["borrower_id"])
            for row in conn.query("SELECT id, external_id, borrower_id FROM cases")
        }
    finally:
        conn.conn.close()
    for case in plans:
        world.cases[case.n], world.borrowers[case.n] = by_external[case.external_id]


def _visits(world: World) -> None:
    plans = visit_plans(case_plans())
    items = []
    for plan in plans:
        body: dict[str, Any] = {
            "case_id": world.cases[plan.case.n],
            "agent_id": world.users[plan.agent],
            "visit_date": plan.visit_date.isoformat(),
            "purpose": plan.purpose,
            "window_start": plan.window[0],
            "window_end": plan.window[1],
            "notes": f"golden visit {plan.key}",
        }
        if plan.notice_at is not None:
            body["notice"] = {"kind": "appointment", "given_at": _iso(plan.notice_at)}
        items.append(body)
    made = world.call("POST", "/api/v1/visits/bulk", "dispatcher", (200,), json={"visits": items})
    assert made["refused"] == 0, [r["error"] for r in made["results"] if r["error"]]
    for plan, result in zip(plans, made["results"], strict=True):
        world.visits[plan.key] = result["visit"]["id"]
        world.versions[plan.key] = result["visit"]["version"]
        world.plans[plan.key] = plan
        world.owner[plan.key] = plan.agent


def _consents(world: World) -> None:
    """Out-of-hours consents: one in force, one expired, one withdrawn midway (driver)."""
    taken = SETUP_AT - timedelta(days=5)
    for key, n, until in (
        ("in_force", 1, SETUP_AT + timedelta(days=30)),
        ("expired", 9, SETUP_AT - timedelta(days=1)),
        ("withdrawn", 13, SETUP_AT + timedelta(days=30)),
        ("in_force_2", 4, SETUP_AT + timedelta(days=30)),
    ):
        body = {
            "kind": "out_of_hours_consent",
            "source": "letter",
            "taken_at": _iso(taken),
            "window_start": "21:00",
            "window_end": "23:30",
            "valid_until": _iso(until),
            "evidence": f"consent form {key}",
        }
        made = world.call(
            "POST",
            f"/api/v1/borrowers/{world.borrowers[n]}/requests",
            "dispatcher",
            (201,),
            json=body,
        )
        world.consents[key] = made["request"]["id"]


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


def _uploads(world: World, names: tuple[str, ...]) -> None:
    for agent, _, _ in AGENTS:
        for name in names:
            upload(world, agent, name)


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


def _setup_changes(world: World) -> None:
    for n in CANCELLED_AT_SETUP:
        assert cancel(world, f"c{n}-today") == 200
    for n in REASSIGNED_AT_SETUP:
        assert reassign(world, f"c{n}-today") == 200
    for n, flag in CASE_FLAGS_AT_SETUP.items():
        flag_case(world, n, flag)


def midway_changes(world: World) -> Iterator[str]:
    """What changes on the server while the phones are out: applied by the driver at the
    middle of the run. Yields a label per change."""
    for key in CANCELLED_MIDWAY:
        yield f"cancel {key}: {cancel(world, key)}"
    for key in REASSIGNED_MIDWAY:
        yield f"reassign {key}: {reassign(world, key)}"
    for n in HARDSHIP_MIDWAY:
        flag_case(world, n, "hardship")
        yield f"hardship c{n}"
    withdraw_consent(world, "withdrawn", 13)
    yield "withdraw consent c13"
    _uploads(world, UPLOADED_MIDWAY)
    yield "upload late blobs"
    for _, _, phones in AGENTS:  # the phones learn what to purge
        for phone in phones:
            world.call("GET", "/api/v1/sync/pull", phone, (200,))
    yield "every phone pulls"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
