"""The long reliability runs: crash safety, contention and slow clients, with their figures.

    .venv/bin/python -m bench.soak [--kills 50] [--agents 200] [--seconds 120]

1. Crash safety: phones push (visit reports, badge confirmations, signed agreements with
   their signature blobs), pull and view their day while gunicorn workers and the master
   are SIGKILLed `--kills` times at random moments; after a master kill a fresh gunicorn
   starts on the same database and port. Then: integrity_check, every acknowledged record
   stored exactly once, every acknowledged agreement with its receipt, the ledger verifies.
2. Contention: `--agents` phones push and pull at once for `--seconds`, against 4 sync
   workers and then 4 gthread workers x 4 threads: 5xx and "database is locked" seen,
   throughput, p50/p99 push latency.
3. Slow clients: slowloris sockets against gthread workers (fewer than the threads, then
   as many as the threads) and against sync workers.

Everything runs on 127.0.0.1 in a scratch directory. It prints figures and exits 1 when an
invariant broke (a record lost or doubled, a 5xx, a lock error, a failed check); it never
fails on time. The same trials, smaller, are tests/system/test_crash_safety.py and
tests/system/test_contention.py.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from loadtest.slow_clients import SlowClientReport, slow_client_trial
from loadtest.trials import ContentionReport, CrashReport, contention_trial, crash_trial


def main(argv: list[str] | None = None) -> int:
    """Run the three trials and print their figures; 1 when an invariant broke."""
    args = _parser().parse_args(argv)
    print(f"doorstep soak, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"gunicorn {version('gunicorn')}"
    )
    failures: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="doorstep-soak-") as scratch:
        root = Path(scratch)
        if args.kills:
            print(f"\n== crash safety: {args.kills} SIGKILLs, {args.crash_agents} agents")
            (root / "crash").mkdir()
            crash = crash_trial(
                root / "crash",
                agents=args.crash_agents,
                kills=args.kills,
                workers=3,
                gap_s=(0.3, 1.2),
                seed=args.seed,
                max_seconds=args.kills * 6.0,
            )
            _show(crash.lines())
            failures += _crash_failures(crash, args.kills)
        for worker_class, threads in (("sync", 1), ("gthread", 4)) if args.agents else ():
            print(f"\n== contention: {args.agents} agents, {args.seconds:.0f} s, {worker_class}")
            (root / worker_class).mkdir()
            contention = contention_trial(
                root / worker_class,
                agents=args.agents,
                seconds=args.seconds,
                workers=4,
                worker_class=worker_class,
                threads=threads,
            )
            _show(contention.lines())
            failures += _contention_failures(contention)
        if args.slow:
            print("\n== slow clients")
            for name, options in (
                ("gthread-3", {"slow_clients": 3}),
                ("gthread-8", {"slow_clients": 8}),
                ("sync-2", {"slow_clients": 2, "worker_class": "sync", "threads": 1}),
            ):
                (root / name).mkdir()
                slow = slow_client_trial(root / name, seconds=6, workers=2, **options)
                _show(slow.lines())
                failures += _slow_failures(slow, name)
    print(f"\nsoak finished in {time.monotonic() - started:.0f} s")
    for failure in failures:
        print(f"FAILED: {failure}")
    print("OK" if not failures else f"{len(failures)} invariant(s) broken")
    return 1 if failures else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs (0: skip the trial)")
    parser.add_argument("--crash-agents", type=int, default=8, help="phones under the kills")
    parser.add_argument("--agents", type=int, default=200, help="contention (0: skip)")
    parser.add_argument("--seconds", type=float, default=120.0, help="contention duration")
    parser.add_argument("--no-slow", dest="slow", action="store_false", help="skip slowloris")
    parser.add_argument("--seed", type=int, default=1)
    return parser


def _show(lines: list[str]) -> None:
    for line in lines:
        print(f"  {line}")


def _crash_failures(report: CrashReport, kills: int) -> list[str]:
    checks = {
        f"only {sum(report.kills.values())} of {kills} kills happened": sum(report.kills.values())
        == kills,
        f"integrity_check: {report.store.integrity}": report.store.integrity == ["ok"],
        f"{len(report.lost)} acknowledged records lost": not report.lost,
        f"{len(report.store.duplicated)} records duplicated": not report.store.duplicated,
        f"{len(report.store.receipts_missing)} agreements without a receipt": not (
            report.store.receipts_missing
        ),
        f"ledger: {report.ledger.get('problem')}": report.ledger.get("intact") is True,
        f"{len(report.meter.server_errors)} 5xx under kills": not report.meter.server_errors,
        f"{report.meter.locked} 'database is locked' under kills": not report.meter.locked,
        f"{report.still_queued} records still queued after the drain": not report.still_queued,
        f"phone errors: {report.phone_errors[:3]}": not report.phone_errors,
    }
    return [f"crash: {what}" for what, ok in checks.items() if not ok]


def _contention_failures(report: ContentionReport) -> list[str]:
    meter = report.meter
    checks = {
        f"{len(meter.server_errors)} 5xx: {meter.server_errors[:3]}": not meter.server_errors,
        f"{meter.locked} 'database is locked' answers": not meter.locked,
        f"{report.locked_in_log} 'database is locked' in the log": not report.locked_in_log,
        f"{report.errors_in_log} unhandled errors in the log": not report.errors_in_log,
        f"{len(report.store.missing)} acknowledged records missing": not report.store.missing,
        f"phone errors: {report.phone_errors[:3]}": not report.phone_errors,
    }
    return [f"contention: {what}" for what, ok in checks.items() if not ok]


def _slow_failures(report: SlowClientReport, name: str) -> list[str]:
    # Fewer slow sockets than a worker's threads must not hold up anyone; the other two
    # runs show what happens without a buffering proxy and are figures, not invariants.
    if name == "gthread-3" and report.served != sum(report.statuses.values()):
        return [f"slow clients ({name}): {report.statuses}"]
    return []


if __name__ == "__main__":
    sys.exit(main())
