"""Field simulator: agents work offline, reconnect through faults, and the server is checked.

    python -m loadtest.simulator --logins instance/demo-logins.json --agents 5 --seed 7
    python -m loadtest.simulator --base-url http://127.0.0.1:5000/api/v1 --agents 5 \\
        --password PW --dispatcher dispatcher01 --admin admin01 --seed 7

Credentials come from the logins file `flask demo` writes (`--logins`), or, for a demo
loaded with one password for every account, from `--password`. Each agent (the first
--agents agents by username) pulls its day on a good network, then works offline in
rounds: shows its badge, types the borrower's ID characters, reports the visit, and now and
then has an agreement signed (with small PNG signatures). Between rounds it reconnects
through a transport that injects faults into sync traffic: requests lost before reaching
the server, answers lost after the server committed, batches delivered twice, an old batch
delivered again after newer ones, 503s. One agent's clock runs minutes off. Mid-day the
simulator, as dispatcher, reassigns a visit an agent has already reported on and cancels
another; as admin it revokes one device while it still holds unsent records. Every run uses
fresh phones, enrolled at their first login (a revoked device stays revoked), not those of
the logins file.

At the end, on a good network, it checks the server against what the agents recorded:
every record a client holds as acknowledged is stored exactly once; records still queued,
rejected or lost with a wiped device are reported; no agent holds a card past its expiry,
for a cancelled visit, or for a visit reassigned away. Exit status 1 when any check fails.
It talks only to the base URL, and refuses any host but the loopback.
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sync.client import BackoffPolicy, FieldClient, HttpTransport

from .checks import PhoneCheck, check_phone
from .logins import Login, LoginsError, demo_logins, read_logins
from .phone import Phone
from .staff import StaffRequestFailed, StaffSession
from .transport import FaultyTransport

DEFAULT_BASE_URL = "http://127.0.0.1:5000/api/v1"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# Short waits: the simulator's network is loopback, and the whole run is time-bounded.
SIM_BACKOFF = BackoffPolicy(base_s=0.05, cap_s=0.4, max_attempts=6, max_total_s=3.0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulation; 0 when every check passed."""
    args = _parser().parse_args(argv)
    try:
        logins = (
            read_logins(args.logins) if args.logins else demo_logins(args.password, args.agents)
        )
        agents = logins.agents(args.agents)
        dispatcher_login = logins.staff("dispatcher", args.dispatcher)
        admin_login = logins.staff("admin", args.admin)
    except LoginsError as error:
        print(f"cannot run: {error}", file=sys.stderr)
        return 2
    base_url = args.base_url or logins.base_url or DEFAULT_BASE_URL
    if urllib.parse.urlsplit(base_url).hostname not in LOOPBACK:
        print(f"refusing {base_url}: the simulator only talks to the loopback")
        return 2
    try:
        return _run(args, base_url, agents, dispatcher_login, admin_login)
    except StaffRequestFailed as error:
        print(f"cannot run: {error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtest.simulator", description=__doc__)
    parser.add_argument(
        "--base-url", help=f"default: the logins file's base_url, else {DEFAULT_BASE_URL}"
    )
    credentials = parser.add_mutually_exclusive_group(required=True)
    credentials.add_argument("--logins", help="the demo-logins.json file `flask demo` writes")
    credentials.add_argument("--password", help="one password shared by every account used")
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--dispatcher", help="default: the first dispatcher (dispatcher01)")
    parser.add_argument("--admin", help="default: the first admin (admin01)")
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


def _run(
    args: argparse.Namespace,
    base_url: str,
    agents: list[Login],
    dispatcher_login: Login,
    admin_login: Login,
) -> int:
    rng = random.Random(args.seed)
    started = time.monotonic()
    deadline = started + args.max_seconds
    http = HttpTransport(base_url, timeout=10)
    dispatcher = StaffSession(http, dispatcher_login.username, dispatcher_login.password)
    admin = StaffSession(http, admin_login.username, admin_login.password)
    with tempfile.TemporaryDirectory(prefix="doorstep-sim-") as scratch:
        state_dir = Path(args.state_dir or scratch)
        phones = _phones(args, rng, http, dispatcher, agents, state_dir)
        events = _simulate(args, rng, phones, dispatcher, admin, deadline)
        checks = [check_phone(phone, dispatcher) for phone in phones]
        _print_summary(checks, events, time.monotonic() - started)
        for phone in phones:
            phone.client.close()
    return 0 if all(check.ok for check in checks) else 1


def _phones(
    args: argparse.Namespace,
    rng: random.Random,
    http: HttpTransport,
    dispatcher: StaffSession,
    agents: list[Login],
    state_dir: Path,
) -> list[Phone]:
    """One phone per agent. They share `rng` for what the agents do, so a seed replays
    the same day; each transport and client has its own generator drawn from it."""
    by_name = {user["username"]: user for user in dispatcher.read("/users", {"role": "agent"})}
    run = secrets.token_hex(3)  # A fresh phone (store) per run: one revoked last run stays so.
    phones = []
    for index, agent in enumerate(agents, start=1):
        user = by_name.get(agent.username)
        if user is None:
            raise SystemExit(f"no agent {agent.username} on the server (run `flask demo` first)")
        transport = FaultyTransport(http, rng=random.Random(rng.random()), rate=args.fault_rate)
        skew = timedelta(minutes=args.clock_skew_minutes if index == 2 else 0)
        client = FieldClient(
            transport,
            state_dir / f"{agent.username}-{run}.db",
            agent.username,
            agent.password,
            None,  # a new phone: it enrols at its first login
            clock=lambda skew=skew: datetime.now(UTC) + skew,
            backoff=SIM_BACKOFF,
            rng=random.Random(rng.random()),
        )
        badge = user["agent"]["badge_number"]
        phones.append(Phone(client, transport, badge, rng, user["id"], skew, tally_outbox=True))
    return phones


def _simulate(
    args: argparse.Namespace,
    rng: random.Random,
    phones: list[Phone],
    dispatcher: StaffSession,
    admin: StaffSession,
    deadline: float,
) -> list[str]:
    events: list[str] = []
    for phone in phones:  # The morning: every phone pulls its day on a good network.
        phone.sync()
    # Stop the rounds with a third of the time left for the final drain and the checks.
    cutoff = deadline - (deadline - time.monotonic()) / 3
    for round_number in range(1, args.rounds + 1):
        if time.monotonic() > cutoff:
            events.append(f"time bound: stopped before round {round_number}")
            break
        for phone in phones:
            if not phone.wiped:
                phone.work_offline(args.visits_per_round)
        time.sleep(max(0.0, min(args.offline_seconds, cutoff - time.monotonic())))
        if round_number == 1:
            events += _dispatch_changes(phones, dispatcher, rng)
        if round_number == min(2, args.rounds) and len(phones) >= 2:
            events.append(_revoke(phones[-1], admin))
        for phone in phones:
            phone.transport.enabled = True
            phone.sync()
            phone.transport.enabled = False
    for _ in range(3):  # End of day on a good network: drain every queue.
        for phone in phones:
            if not phone.wiped and phone.queued():
                phone.sync()
    for phone in phones:
        phone.sync()  # One last pull, so purges ordered by the final pushes land too.
    return events


def _dispatch_changes(
    phones: list[Phone], dispatcher: StaffSession, rng: random.Random
) -> list[str]:
    """Reassign a visit the first agent already reported on (offline) to the second;
    cancel one of the third agent's visits it has not reached yet."""
    events = []
    if len(phones) >= 2 and phones[0].visited:
        visit_id = rng.choice(sorted(phones[0].visited))
        events.append(_change_visit(dispatcher, visit_id, phones[1]))
    if len(phones) >= 3:
        third = phones[2]
        pending = [c["id"] for c in third.client.cards() if c["id"] not in third.visited]
        if pending:
            events.append(_change_visit(dispatcher, pending[0], None))
    return events


def _change_visit(dispatcher: StaffSession, visit_id: int, to: Phone | None) -> str:
    """Reassign the visit to `to`'s agent, or cancel it when `to` is None."""
    action = "reassign" if to is not None else "cancel"
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


def _revoke(phone: Phone, admin: StaffSession) -> str:
    device = phone.client.device_id
    response = admin.call(
        "POST", f"/devices/{device}/revoke", json={"reason": "simulated lost phone"}
    )
    if response.status != 200:
        return f"revoke {device} refused: {response.status} {response.error_code}"
    return f"admin revoked {device} ({phone.username}, {phone.queued()} queued)"


def _print_summary(checks: list[PhoneCheck], events: list[str], elapsed: float) -> None:
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
        phone, report = check.phone, check.phone.client.report()
        rows.append(
            (
                phone.username + (" (wiped)" if phone.wiped else ""),
                len(phone.recorded),
                len(phone.acknowledged),
                report.flagged,
                len(phone.rejected),
                report.queued,
                phone.unsent_at_wipe,
                sum(check.stored.values()),
                len(check.missing),
                len(check.duplicated),
                report.cards,
                len(check.card_problems),
                sum(phone.transport.injected.values()),
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
        faults.update(check.phone.transport.injected)
        auth.update(check.phone.transport.auth_calls)
    print(f"faults injected: {dict(sorted(faults.items())) or 'none'}")
    print(f"tokens: {auth['/auth/login']} logins, {auth['/auth/refresh']} refreshes")
    for event in events:
        print(f"event: {event}")
    for check in checks:
        phone = check.phone
        for record_id, reason in sorted(phone.rejected.items()):
            print(f"{phone.username}: rejected {record_id}: {reason}")
        for record_id in check.missing:
            print(f"{phone.username}: MISSING acknowledged record {record_id}")
        for record_id in check.duplicated:
            print(f"{phone.username}: DUPLICATED record {record_id}")
        for problem in check.card_problems + phone.errors:
            print(f"{phone.username}: PROBLEM {problem}")
    verdict = "OK" if all(check.ok for check in checks) else "FAILED"
    print(f"{verdict}: {len(checks)} agents in {elapsed:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
