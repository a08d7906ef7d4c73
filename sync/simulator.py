"""Field simulator: agents work offline, reconnect through faults, and the server is checked.

    python -m sync.simulator --base-url http://127.0.0.1:5000/api/v1 --agents 5 \\
        --password PW --dispatcher dispatcher01 --admin admin01 --seed 7

Each agent (agent01, agent02, ...) pulls its day on a good network, then works offline in
rounds: shows its badge, types the borrower's ID characters, reports the visit, and now and
then has an agreement signed (with small PNG signatures). Between rounds it reconnects
through a transport that injects faults into sync traffic: requests lost before reaching
the server, answers lost after the server committed, batches delivered twice, an old batch
delivered again after newer ones, 503s. One agent's clock runs minutes off. Mid-day the
simulator, as dispatcher, reassigns a visit an agent has already reported on and cancels
another; as admin it revokes one device while it still holds unsent records.

At the end, on a good network, it checks the server against what the agents recorded:
every record a client holds as acknowledged is stored exactly once; records still queued,
rejected or lost with a wiped device are reported; no agent holds a card past its expiry,
for a cancelled visit, or for a visit reassigned away. Exit status 1 when any check fails.
It talks only to --base-url, and refuses any host but the loopback.
"""

from __future__ import annotations

import argparse
import random
import secrets
import struct
import sys
import tempfile
import time
import urllib.parse
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from .client import (
    BackoffPolicy,
    ClientError,
    DeviceRevoked,
    FieldClient,
    HttpTransport,
    SyncResult,
    Transport,
    TransportError,
    TransportResponse,
)

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
FAULTS = ("lost_request", "lost_answer", "duplicate", "stale_replay", "server_error")
OUTCOMES = ("met_borrower", "not_home", "promise_to_pay", "refused", "third_party_met")
# Short waits: the simulator's network is loopback, and the whole run is time-bounded.
SIM_BACKOFF = BackoffPolicy(base_s=0.05, cap_s=0.4, max_attempts=6, max_total_s=3.0)


class FaultyTransport:
    """Wraps a transport and injects faults into sync and attachment traffic."""

    def __init__(self, inner: Transport, rng: random.Random, rate: float) -> None:
        self.inner = inner
        self.rng = rng
        self.rate = rate
        self.enabled = False
        self.injected: Counter[str] = Counter()
        self.auth_calls: Counter[str] = Counter()  # logins and refreshes, by path
        self._pushes: list[tuple[Mapping[str, str], Any]] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> TransportResponse:
        """Forward the request, perhaps with one fault."""

        def send(body: Any = json, sent: Mapping[str, str] | None = headers) -> TransportResponse:
            return self.inner.request(
                method, path, json=body, data=data, headers=sent, params=params
            )

        if path.startswith("/auth/"):
            self.auth_calls[path] += 1
        faulty = path.startswith(("/sync/", "/attachments/"))
        if not (self.enabled and faulty and self.rng.random() < self.rate):
            return self._remember(path, json, headers, send())
        fault = self.rng.choice(FAULTS)
        if fault == "stale_replay" and not (path == "/sync/push" and self._pushes):
            fault = "duplicate"
        self.injected[fault] += 1
        if fault == "lost_request":
            raise TransportError("simulated: request lost before the server")
        if fault == "server_error":
            body = {"error": {"code": "unavailable", "message": "simulated 503", "details": {}}}
            return TransportResponse(503, {"retry-after": "0"}, body)
        response = self._remember(path, json, headers, send())
        if fault == "lost_answer":
            raise TransportError("simulated: answer lost after the server committed")
        if fault == "duplicate":
            return send()
        # stale_replay: an earlier batch arrives again after this newer one.
        old_headers, old_body = self.rng.choice(self._pushes)
        self.inner.request(method, path, json=old_body, headers=old_headers)
        return response

    def _remember(
        self, path: str, body: Any, headers: Mapping[str, str] | None, response: TransportResponse
    ) -> TransportResponse:
        if path == "/sync/push" and response.status == 200:
            self._pushes.append((dict(headers or {}), body))
        return response


class StaffSession:
    """A dispatcher or admin on a good network; logs in again when its token expires."""

    def __init__(self, transport: Transport, username: str, password: str) -> None:
        self.transport = transport
        self.username = username
        self._password = password
        self.headers = self._login()

    def _login(self) -> dict[str, str]:
        body = {"username": self.username, "password": self._password}
        login = self.transport.request("POST", "/auth/login", json=body)
        if login.status != 200:
            raise SystemExit(f"{self.username} cannot log in: {login.status} {login.body}")
        return {"Authorization": f"Bearer {login.body['access_token']}"}

    def call(self, method: str, path: str, **options: Any) -> TransportResponse:
        """One request with the staff token."""
        extra = options.pop("headers", {})
        response = self.transport.request(
            method, path, headers={**self.headers, **extra}, **options
        )
        if response.status == 401:
            self.headers = self._login()
            response = self.transport.request(
                method, path, headers={**self.headers, **extra}, **options
            )
        return response

    def pages(self, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every item of a paginated list (`items` and `next_after`)."""
        items: list[dict[str, Any]] = []
        after = 0
        while True:
            response = self.call("GET", path, params={**params, "after": after, "limit": 500})
            if response.status != 200:
                raise SystemExit(f"GET {path}: {response.status} {response.body}")
            items += response.body["items"]
            after = response.body.get("next_after")
            if not after:
                return items


@dataclass
class Agent:
    """One simulated agent: its phone, what it recorded, and what the phone reported."""

    username: str
    user_id: int
    badge: str
    client: FieldClient
    transport: FaultyTransport
    clock_skew: timedelta
    recorded: list[str] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    rejected: dict[str, str | None] = field(default_factory=dict)
    visited: set[int] = field(default_factory=set)
    unsent_at_wipe: int = 0
    wiped: bool = False
    errors: list[str] = field(default_factory=list)

    def now(self) -> datetime:
        """The phone's clock."""
        return datetime.now(UTC) + self.clock_skew

    def sync(self) -> SyncResult | None:
        """One sync pass; remembers what the phone learned."""
        if self.wiped:
            return None
        try:
            result = self.client.sync()
        except ClientError as error:
            self.errors.append(f"{type(error).__name__}: {error}")
            return None
        self.acknowledged |= set(result.acknowledged)
        if result.stopped == "wiped":
            self.wiped, self.unsent_at_wipe = True, result.unsent_at_wipe
        else:
            for entry in self.client.outbox_state():
                if entry.state == "acknowledged":
                    self.acknowledged.add(entry.id)
                elif entry.state == "rejected":
                    self.rejected[entry.id] = entry.reason
        return result


@dataclass
class Check:
    """What the final comparison found for one agent."""

    agent: Agent
    stored: Counter[str]
    missing: list[str]
    duplicated: list[str]
    card_problems: list[str]

    @property
    def ok(self) -> bool:
        """True when nothing acknowledged is missing or duplicated and no card is held wrongly."""
        return not (self.missing or self.duplicated or self.card_problems or self.agent.errors)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulation; 0 when every check passed."""
    args = _parser().parse_args(argv)
    host = urllib.parse.urlsplit(args.base_url).hostname
    if host not in LOOPBACK:
        print(f"refusing {args.base_url}: the simulator only talks to the loopback")
        return 2
    rng = random.Random(args.seed)
    started = time.monotonic()
    deadline = started + args.max_seconds
    http = HttpTransport(args.base_url, timeout=10)
    dispatcher = StaffSession(http, args.dispatcher, args.password)
    admin = StaffSession(http, args.admin, args.password)
    with tempfile.TemporaryDirectory(prefix="doorstep-sim-") as scratch:
        agents = _agents(args, rng, http, dispatcher, Path(args.state_dir or scratch))
        events = _simulate(args, rng, agents, dispatcher, admin, deadline)
        checks = _check(agents, dispatcher)
        _print_summary(checks, events, time.monotonic() - started)
        for agent in agents:
            agent.client.close()
    return 0 if all(check.ok for check in checks) else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sync.simulator", description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:5000/api/v1")
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--password", required=True, help="password of every account used")
    parser.add_argument("--dispatcher", default="dispatcher01")
    parser.add_argument("--admin", default="admin01")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3, help="offline periods per agent")
    parser.add_argument("--visits-per-round", type=int, default=2)
    parser.add_argument("--fault-rate", type=float, default=0.3, help="share of sync requests")
    parser.add_argument("--clock-skew-minutes", type=float, default=7.0, help="for agent02")
    parser.add_argument(
        "--offline-seconds",
        type=float,
        default=0.0,
        help="real time each offline period lasts (longer than the token TTL: tokens expire)",
    )
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--state-dir", help="keep the phones' stores here (default: temporary)")
    return parser


def _agents(
    args: argparse.Namespace,
    rng: random.Random,
    http: HttpTransport,
    dispatcher: StaffSession,
    state_dir: Path,
) -> list[Agent]:
    users = dispatcher.call("GET", "/users", params={"role": "agent"})
    by_name = {user["username"]: user for user in users.body}
    run = secrets.token_hex(3)  # A fresh device per run: a device revoked last run stays so.
    agents = []
    for index in range(1, args.agents + 1):
        username = f"agent{index:02d}"
        if username not in by_name:
            raise SystemExit(f"no agent {username} on the server (run `flask demo` first)")
        transport = FaultyTransport(http, random.Random(rng.random()), args.fault_rate)
        skew = timedelta(minutes=args.clock_skew_minutes if index == 2 else 0)
        client = FieldClient(
            transport,
            state_dir / f"{username}-{run}.db",
            username,
            args.password,
            f"sim-{run}-{username}",
            clock=lambda skew=skew: datetime.now(UTC) + skew,
            backoff=SIM_BACKOFF,
            rng=random.Random(rng.random()),
        )
        user = by_name[username]
        agent = Agent(username, user["id"], user["agent"]["badge_number"], client, transport, skew)
        agents.append(agent)
    return agents


def _simulate(
    args: argparse.Namespace,
    rng: random.Random,
    agents: list[Agent],
    dispatcher: StaffSession,
    admin: StaffSession,
    deadline: float,
) -> list[str]:
    events: list[str] = []
    for agent in agents:  # The morning: every phone pulls its day on a good network.
        agent.sync()
    # Stop the rounds with a third of the time left for the final drain and the checks.
    cutoff = deadline - (deadline - time.monotonic()) / 3
    for round_number in range(1, args.rounds + 1):
        if time.monotonic() > cutoff:
            events.append(f"time bound: stopped before round {round_number}")
            break
        for agent in agents:
            if not agent.wiped:
                _work_offline(agent, rng, args.visits_per_round)
        time.sleep(max(0.0, min(args.offline_seconds, cutoff - time.monotonic())))
        if round_number == 1:
            events += _dispatch_changes(agents, dispatcher, rng)
        if round_number == min(2, args.rounds) and len(agents) >= 2:
            events.append(_revoke(agents[-1], admin))
        for agent in agents:
            agent.transport.enabled = True
            agent.sync()
            agent.transport.enabled = False
    for _ in range(3):  # End of day on a good network: drain every queue.
        for agent in agents:
            if not agent.wiped and agent.client.report().queued:
                agent.sync()
    for agent in agents:
        agent.sync()  # One last pull, so purges ordered by the final pushes land too.
    return events


def _work_offline(agent: Agent, rng: random.Random, visits: int) -> None:
    """Record the next visits of the day, as the phone would with no network."""
    todo = [card for card in agent.client.cards() if card["id"] not in agent.visited]
    for card in todo[:visits]:
        agent.visited.add(card["id"])
        try:
            agent.recorded += _record_visit(agent, rng, card)
        except DeviceRevoked:
            return


def _record_visit(agent: Agent, rng: random.Random, card: Mapping[str, Any]) -> list[str]:
    client, visit_id = agent.client, card["id"]
    borrower = card.get("borrower") or {}
    home = borrower.get("home_geo") or {"lat": 31.23, "lon": 121.47}
    lat = home["lat"] + rng.uniform(-0.0002, 0.0002)
    lon = home["lon"] + rng.uniform(-0.0002, 0.0002)
    arrived = agent.now() - timedelta(minutes=2)
    ids = [client.record_agent_credential(visit_id, agent.badge, borrower_acknowledged=True)]
    outcome = rng.choice(OUTCOMES)
    fields: dict[str, Any] = {
        "contacted_at": agent.now(),
        "location": {"lat": round(lat, 6), "lon": round(lon, 6), "accuracy_m": 12.0},
        "notes": f"simulated visit by {agent.username}",
    }
    if outcome == "promise_to_pay":
        fields["promise_amount"] = Decimal("500.00")
        fields["promise_date"] = date.fromisoformat(card["visit_date"]) + timedelta(days=7)
    if outcome == "third_party_met":
        fields["third_party_present"] = True
    if rng.random() < 0.3:
        fields["attachments"] = [client.add_blob(_tiny_png(rng))]
    if outcome in ("met_borrower", "promise_to_pay"):
        ids.append(client.record_borrower_identity(visit_id, f"{rng.randrange(10**6):06d}"))
    signs = card.get("purpose") == "agreement_signing" and rng.random() < 0.6
    if signs:
        outcome = "agreement_signed"
    ids.append(client.record_visit_report(visit_id, arrived_at=arrived, outcome=outcome, **fields))
    if signs:
        due = date.fromisoformat(card["visit_date"])
        ids.append(
            client.record_agreement(
                visit_id=visit_id,
                case_id=card["case_id"],
                installments=[(due + timedelta(days=30 * n), "400.00") for n in (1, 2, 3)],
                currency=borrower.get("currency", "CNY"),
                template_id="repayment-plan-zh",
                template_version=1,
                borrower_signature=_tiny_png(rng),
                agent_signature=_tiny_png(rng),
                signed_at=agent.now(),
                lat=f"{lat:.6f}",
                lon=f"{lon:.6f}",
            )
        )
    return ids


def _dispatch_changes(
    agents: list[Agent], dispatcher: StaffSession, rng: random.Random
) -> list[str]:
    """Reassign a visit agent01 already reported on (offline) to agent02; cancel one of
    agent03's visits it has not reached yet."""
    events = []
    if len(agents) >= 2 and agents[0].visited:
        visit_id = rng.choice(sorted(agents[0].visited))
        events.append(_change_visit(dispatcher, visit_id, "reassign", agents[1]))
    if len(agents) >= 3:
        pending = [c["id"] for c in agents[2].client.cards() if c["id"] not in agents[2].visited]
        if pending:
            events.append(_change_visit(dispatcher, pending[0], "cancel", None))
    return events


def _change_visit(dispatcher: StaffSession, visit_id: int, action: str, to: Agent | None) -> str:
    visit = dispatcher.call("GET", f"/visits/{visit_id}")
    if visit.status != 200:
        return f"{action} visit {visit_id}: GET answered {visit.status}"
    version = visit.body["version"]
    if to is not None:
        response = dispatcher.call(
            "PATCH",
            f"/visits/{visit_id}",
            json={"agent_id": to.user_id},
            headers={"If-Match": str(version)},
        )
        what = f"reassigned visit {visit_id} to {to.username}"
    else:
        response = dispatcher.call(
            "POST", f"/visits/{visit_id}/cancel", json={"version": version, "reason": "simulated"}
        )
        what = f"cancelled visit {visit_id}"
    if response.status != 200:
        return f"{action} visit {visit_id} refused: {response.status} {response.error_code}"
    return f"dispatcher {what}"


def _revoke(agent: Agent, admin: StaffSession) -> str:
    device = agent.client.device_id
    response = admin.call(
        "POST", f"/devices/{device}/revoke", json={"reason": "simulated lost phone"}
    )
    if response.status != 200:
        return f"revoke {device} refused: {response.status} {response.error_code}"
    return f"admin revoked {device} ({agent.username}, {agent.client.report().queued} queued)"


def _check(agents: list[Agent], dispatcher: StaffSession) -> list[Check]:
    checks = []
    for agent in agents:
        rows = dispatcher.pages("/records", {"agent_id": agent.user_id})
        stored = Counter(row["id"] for row in rows if row["id"] in set(agent.recorded))
        missing = sorted(i for i in agent.acknowledged if stored[i] == 0)
        duplicated = sorted(i for i, n in stored.items() if n > 1)
        checks.append(Check(agent, stored, missing, duplicated, _card_problems(agent, dispatcher)))
    return checks


def _card_problems(agent: Agent, dispatcher: StaffSession) -> list[str]:
    """Cards the phone must no longer hold: expired on its clock, cancelled, moved away."""
    report = agent.client.report()
    if agent.wiped:
        return [] if report.cards == 0 and report.queued == 0 else ["wiped phone holds data"]
    problems = []
    now = agent.now()
    # Read the raw store, not cards(), which would drop expired cards as it reads them.
    for visit_id, expires_at in agent.client.held_cards():
        if expires_at is not None and expires_at <= now:
            problems.append(f"visit {visit_id}: card held past its expiry {expires_at}")
        visit = dispatcher.call("GET", f"/visits/{visit_id}").body
        if visit.get("status") == "cancelled":
            problems.append(f"visit {visit_id}: card held for a cancelled visit")
        elif visit.get("agent_id") != agent.user_id:
            problems.append(f"visit {visit_id}: card held after reassignment")
    return problems


def _print_summary(checks: list[Check], events: list[str], elapsed: float) -> None:
    header = (
        "agent",
        "recorded",
        "acked",
        "flagged",
        "rejected",
        "queued",
        "lost@wipe",
        "stored",
        "missing",
        "dup",
        "cards",
        "card_issues",
        "faults",
    )
    rows = []
    for check in checks:
        agent, report = check.agent, check.agent.client.report()
        rows.append(
            (
                agent.username + (" (wiped)" if agent.wiped else ""),
                len(agent.recorded),
                len(agent.acknowledged),
                report.flagged,
                len(agent.rejected),
                report.queued,
                agent.unsent_at_wipe,
                sum(check.stored.values()),
                len(check.missing),
                len(check.duplicated),
                report.cards,
                len(check.card_problems),
                sum(agent.transport.injected.values()),
            )
        )
    totals = ("total", *(sum(row[i] for row in rows) for i in range(1, len(header))))
    widths = [max(len(str(row[i])) for row in [header, *rows, totals]) for i in range(len(header))]
    line = "  ".join

    print(line(str(h).ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in [*rows, totals]:
        print(
            line(
                str(v).rjust(w) if i else str(v).ljust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    faults: Counter[str] = Counter()
    auth: Counter[str] = Counter()
    for check in checks:
        faults.update(check.agent.transport.injected)
        auth.update(check.agent.transport.auth_calls)
    print(f"faults injected: {dict(sorted(faults.items())) or 'none'}")
    print(f"tokens: {auth['/auth/login']} logins, {auth['/auth/refresh']} refreshes")
    for event in events:
        print(f"event: {event}")
    for check in checks:
        agent = check.agent
        for record_id, reason in sorted(agent.rejected.items()):
            print(f"{agent.username}: rejected {record_id}: {reason}")
        for record_id in check.missing:
            print(f"{agent.username}: MISSING acknowledged record {record_id}")
        for record_id in check.duplicated:
            print(f"{agent.username}: DUPLICATED record {record_id}")
        for problem in check.card_problems + agent.errors:
            print(f"{agent.username}: PROBLEM {problem}")
    verdict = "OK" if all(check.ok for check in checks) else "FAILED"
    print(f"{verdict}: {len(checks)} agents in {elapsed:.1f} s")


def _tiny_png(rng: random.Random) -> bytes:
    """A valid 2x2 PNG of random colour: a stand-in for a signature image."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    pixels = bytes(rng.randrange(256) for _ in range(3))
    raw = b"".join(b"\x00" + pixels * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


if __name__ == "__main__":
    sys.exit(main())
