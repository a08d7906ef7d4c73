"""A pull of a 25-visit day from a fresh cursor, through a real server, and where it goes.

For each tree measured (this one, and with `--ref REF` also that git ref, checked out in a
temporary worktree, in the same run): a demo world (`flask demo`), one gunicorn worker
on 127.0.0.1, one agent's phone pulling its day again and again without a cursor (every
pull serves all 25 cards and ledgers them; with `--outcomes` the phone first pushes a visit
report per card, so every pull also carries 25 record outcomes). Prints, per tree:

- wall time per pull as the client sees it (p50/p95/p99, one keep-alive connection);
- server CPU per pull (the worker's user + system time; far less disturbed by the machine's
  other load than wall time) and the Server-Timing phases;
- exposure-ledger rows written per pull (read from the store after the pulls);
- a pyinstrument summary of the costliest frames over a few pulls in process.

With `--ref`, both servers run at once and the phone pulls from each in turn, so the
machine's other load falls on both alike; then the ratios ref/this are printed. Figures
only; nothing here fails on time, and every loop is bounded by `--pulls` and
`--max-seconds`.

    .venv/bin/python -m bench.sync_pull [--pulls 300] [--ref main] [--outcomes]
        [--reports-per-visit 4] [--no-profile]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from bench.common import ROOT, VENV_BIN, bench_env, demo, login, percentile, server_process

# Run in the measured tree's own interpreter process (cwd = that tree), so a ref's code is
# profiled, not this one's: a few pulls through the Flask test client under pyinstrument.
PROFILE_SCRIPT = """
import sys
from pyinstrument import Profiler
from server import create_app
token, device, pulls = sys.argv[1], sys.argv[2], int(sys.argv[3])
app = create_app()
client = app.test_client()
headers = {"Authorization": "Bearer " + token, "X-Device-Id": device}
for _ in range(3):  # warm: first-use caches, compiled plans
    client.get("/api/v1/sync/pull?limit=200", headers=headers)
profiler = Profiler(interval=0.0002)
profiler.start()
for _ in range(pulls):
    answer = client.get("/api/v1/sync/pull?limit=200", headers=headers)
    assert answer.status_code == 200, answer.status_code
profiler.stop()
print(profiler.output_text(unicode=False, color=False, show_all=False, short_mode=False))
"""


@dataclass
class Figures:
    label: str
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: float = 0.0
    cards: int = 0
    outcomes: int = 0
    ledger_rows: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    profile: str = ""


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def worker_cpu_ms(master: int) -> float:
    """User + system CPU time of the master's workers so far, in ms."""
    ticks = 0
    for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


@contextmanager
def tree_at(ref: str | None) -> Iterator[Path]:
    """This tree, or `ref` checked out (detached) in a temporary worktree, removed after."""
    if ref is None:
        yield ROOT
        return
    with tempfile.TemporaryDirectory(prefix="doorstep-ref-") as parent:
        path = Path(parent) / "tree"
        git = ["git", "-C", str(ROOT)]
        subprocess.run([*git, "worktree", "add", "--detach", str(path), ref], check=True)
        try:
            yield path
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(path)], check=True)


def ledger_count(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        return conn.execute("SELECT count(*) FROM exposure_ledger").fetchone()[0]


class Target:
    """One tree's world and server, and one agent's phone pulling from it."""

    def __init__(self, label: str, root: Path, database: Path, base: str, master: int) -> None:
        self.figures = Figures(label)
        self.root, self.database, self.base, self.master = root, database, base, master
        self.headers = login(base, "agent01")
        self.http = requests.Session()

    def pull(self) -> dict:
        answer = self.http.get(
            f"{self.base}/sync/pull", params={"limit": 200}, headers=self.headers, timeout=60
        )
        answer.raise_for_status()
        phases = self.figures.phases
        for part in filter(None, answer.headers.get("Server-Timing", "").split(", ")):
            name, duration = part.split(";dur=")
            phases[name] = phases.get(name, 0.0) + float(duration)
        return answer.json()

    def report_day(self, per_visit: int = 1) -> None:
        """`per_visit` visit reports per card of the day (a minute apart, the cards in turn,
        as the peers workload pushes them), pushed once: every later pull from a fresh cursor
        carries their outcomes (25 per report per visit) besides the cards."""
        now = datetime.now(UTC)
        records = []
        visits = self.pull()["upserts"]
        for n in range(len(visits) * per_visit):
            visit = visits[n % len(visits)]
            home = (visit["borrower"] or {}).get("home_geo") or {"lat": 31.2, "lon": 121.5}
            arrived = now - timedelta(hours=2) + timedelta(minutes=n)
            records.append(
                {
                    "id": str(uuid.UUID(int=visit["id"] * 7919 + n, version=4)),
                    "kind": "visit_report",
                    "visit_id": visit["id"],
                    "device_seq": n + 1,
                    "recorded_at": _iso(arrived + timedelta(minutes=5)),
                    "body": {
                        "arrived_at": _iso(arrived),
                        "departed_at": _iso(arrived + timedelta(minutes=4)),
                        "outcome": "not_home",
                        "location": {"lat": home["lat"], "lon": home["lon"], "accuracy_m": 12},
                    },
                }
            )
        answer = self.http.post(
            f"{self.base}/sync/push",
            json={"device_time": _iso(now), "records": records},
            headers=self.headers,
            timeout=60,
        )
        answer.raise_for_status()

    def timed_pull(self) -> None:
        started = time.perf_counter()
        self.pull()
        self.figures.wall_ms.append((time.perf_counter() - started) * 1000)


@contextmanager
def target(label: str, root: Path, args: argparse.Namespace) -> Iterator[Target]:
    """A demo world built by `root`'s own code, served by `root`'s app."""
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-") as workdir:
        env = bench_env(Path(workdir))
        demo(env, args.borrowers, args.agents, root=root)
        with server_process(env, workers=1, root=root) as (base, master):
            yield Target(label, root, Path(env["DOORSTEP_DATABASE"]), base, master)


def measure(targets: list[Target], args: argparse.Namespace, deadline: float) -> None:
    """Warm every server, then pull from each in turn (so the machine's other load falls on
    every tree alike), and fill in each one's figures."""
    for each in targets:
        if args.outcomes or args.reports_per_visit:
            each.report_day(args.reports_per_visit or 1)
        for _ in range(5):
            page = each.pull()
            each.figures.cards, each.figures.outcomes = len(page["upserts"]), len(page["outcomes"])
        each.figures.phases.clear()
    start = [(ledger_count(t.database), worker_cpu_ms(t.master)) for t in targets]
    for _ in range(args.pulls):
        for each in targets:
            each.timed_pull()
        if time.monotonic() > deadline:
            break
    for each, (rows0, cpu0) in zip(targets, start, strict=True):
        figures, done = each.figures, len(each.figures.wall_ms)
        figures.cpu_ms = (worker_cpu_ms(each.master) - cpu0) / done
        figures.ledger_rows = (ledger_count(each.database) - rows0) / done
        figures.phases = {k: v / done for k, v in figures.phases.items()}


def profile(each: Target, args: argparse.Namespace) -> None:
    """pyinstrument over a few pulls through the tree's app in process (same store)."""
    env = bench_env(each.database.parent)
    token = each.headers["Authorization"].split(" ", 1)[1]
    result = subprocess.run(
        [str(VENV_BIN / "python"), "-c", PROFILE_SCRIPT, token,
         each.headers["X-Device-Id"], str(args.profile_pulls)],
        cwd=each.root, env=env, check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    each.figures.profile = result.stdout


def report(figures: Figures, args: argparse.Namespace) -> None:
    wall = figures.wall_ms
    phases = ", ".join(f"{name} {ms:.2f}" for name, ms in figures.phases.items())
    print(f"== {figures.label}")
    print(
        f"pull of a {figures.cards}-card day ({figures.outcomes} outcomes) from a fresh "
        f"cursor, {len(wall)} pulls: "
        f"wall p50 {percentile(wall, 50):.2f} ms, p95 {percentile(wall, 95):.2f} ms, "
        f"p99 {percentile(wall, 99):.2f} ms; server CPU {figures.cpu_ms:.2f} ms per pull; "
        f"ledger rows {figures.ledger_rows:.1f} per pull"
    )
    print(f"server phases, ms per pull: {phases or 'none reported'}")
    if figures.profile:
        lines = figures.profile.splitlines()
        print(f"pyinstrument, {args.profile_pulls} pulls in process (first {args.profile_lines}):")
        print("\n".join(lines[: args.profile_lines]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pulls", type=int, default=300)
    parser.add_argument("--borrowers", type=int, default=2000)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--ref", help="also measure this git ref (first), in a worktree")
    parser.add_argument(
        "--outcomes",
        action="store_true",
        help="push a report per visit first: pulls carry outcomes",
    )
    parser.add_argument(
        "--reports-per-visit",
        type=int,
        default=0,
        help="as --outcomes, with this many reports per visit (4: the peers workload, "
        "100 outcomes per pull, most flagged)",
    )
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--profile-pulls", type=int, default=50)
    parser.add_argument("--profile-lines", type=int, default=70)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    deadline = time.monotonic() + args.max_seconds
    with ExitStack() as stack:
        targets = []
        if args.ref:
            ref_root = stack.enter_context(tree_at(args.ref))
            targets.append(stack.enter_context(target(f"ref {args.ref}", ref_root, args)))
        targets.append(stack.enter_context(target("this tree", ROOT, args)))
        measure(targets, args, deadline)
        for each in targets:
            if args.profile:
                profile(each, args)
            report(each.figures, args)
    if len(targets) == 2:
        ref, this = (t.figures for t in targets)
        print(
            f"ref/this: wall p50 "
            f"{percentile(ref.wall_ms, 50) / percentile(this.wall_ms, 50):.2f}x, "
            f"p95 {percentile(ref.wall_ms, 95) / percentile(this.wall_ms, 95):.2f}x, "
            f"server CPU {ref.cpu_ms / this.cpu_ms:.2f}x"
        )


if __name__ == "__main__":
    main()
