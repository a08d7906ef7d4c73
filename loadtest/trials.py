"""The crash-safety and contention trials: the tests run them small, `bench.soak` large.

- Crash safety: phones push and pull while gunicorn workers and the master are SIGKILLed
  at random moments; then every acknowledged record must be in the store exactly once.
- Contention: every agent pushes and pulls from its own thread at once; no 5xx and no
  "database is locked" may reach a phone or the log.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checks import StoreCheck, check_store, ready_store, verify_ledger
from .figures import percentile, statuses_text
from .fleet import client_acknowledged, drain, drive, in_parallel, make_phones, phone_errors
from .logins import demo_logins
from .phone import Phone
from .server_process import PASSWORD, Gunicorn, load_demo, log_mentions, store_env
from .transport import LOCKED, Meter


@dataclass
class CrashReport:
    """Figures of one crash-safety trial."""

    kills: Counter[str]
    restarts: int
    seconds: float
    recorded: int
    acknowledged: int
    client_acknowledged_not_metered: list[str]
    store: StoreCheck
    ledger: dict[str, Any]
    ready: list[dict[str, Any]]  # /ready's store settings after every start, and at the end
    meter: Meter
    still_queued: int
    phone_errors: list[str]

    @property
    def lost(self) -> list[str]:
        """Acknowledged records that are not in the store."""
        return self.store.missing

    def lines(self) -> list[str]:
        """The figures, one per line."""
        return [
            f"kills survived: {sum(self.kills.values())} "
            f"({self.kills['worker']} workers, {self.kills['master']} masters; "
            f"{self.restarts} restarts on the same database and port) in {self.seconds:.1f} s",
            f"records: {self.recorded} recorded, {self.acknowledged} acknowledged, "
            f"{self.store.stored} stored, {len(self.lost)} acknowledged lost, "
            f"{len(self.store.duplicated)} duplicated, {len(self.meter.agreements)} agreements "
            f"acknowledged, {len(self.store.receipts_missing)} without a receipt",
            f"answers: {self.meter.requests} ({statuses_text(self.meter.statuses)}), "
            f"{self.meter.lost} requests lost to the kills, "
            f"{len(self.meter.server_errors)} 5xx, {self.meter.locked} 'database is locked', "
            f"{len(self.meter.rejected)} rejected, {self.still_queued} still queued",
            f"integrity_check: {', '.join(self.store.integrity)}; ledger intact: "
            f"{self.ledger.get('intact')} ({self.ledger.get('entries_checked')} entries)",
        ]


def crash_trial(
    folder: Path,
    *,
    agents: int = 6,
    kills: int = 6,
    workers: int = 3,
    gap_s: tuple[float, float] = (0.5, 1.5),
    master_share: float = 0.25,
    agreement_share: float = 0.15,
    seed: int = 11,
    max_seconds: float = 600.0,
    database_url: str | None = None,
) -> CrashReport:
    """Phones push and pull while workers and the master are SIGKILLed at random moments.

    A master kill is followed by SIGKILL of its orphaned workers (a supervisor stopping the
    service's control group) and a fresh gunicorn on the same database and port. At the end
    the whole group is SIGKILLed once more, and the store is checked as that crash left it:
    the SQLite file in `folder`, or the PostgreSQL store at `database_url`.
    """
    env = store_env(folder, database_url)
    load_demo(env, agents=agents)
    rng = random.Random(seed)
    plan = ["master" if rng.random() < master_share else "worker" for _ in range(kills)]
    if kills >= 3 and "master" not in plan:
        plan[kills // 2] = "master"
    server = Gunicorn(env, folder / "server.log", workers=workers)
    meter = Meter()
    phones = make_phones(server.base_url, folder, meter, agents, seed, PASSWORD)
    officer = demo_logins(PASSWORD, agents).staff("privacy_officer")
    done: Counter[str] = Counter()
    stop = threading.Event()
    started = time.monotonic()
    try:
        server.start()
        in_parallel(Phone.morning, phones)
        load = threading.Thread(
            target=drive,
            args=(phones,),
            kwargs={
                "seconds": max_seconds,
                "agreement_share": agreement_share,
                "pause_s": 0.05,
                "stop": stop,
            },
        )
        load.start()
        deadline = started + max_seconds
        for kind in plan:
            if time.monotonic() > deadline:
                break
            time.sleep(rng.uniform(*gap_s))
            if kind == "master":
                server.kill_master(orphan_grace_s=rng.uniform(0, 0.3))
                server.start()
                done["master"] += 1
            elif server.kill_worker(rng) is not None:
                done["worker"] += 1
        time.sleep(gap_s[1])  # the load runs on after the last kill too
        stop.set()
        load.join(timeout=120)
        server.wait_for_workers()
        still_queued = drain(phones)
        ledger = verify_ledger(server.base_url, officer.username, officer.password)
        ready = ready_store(server.base_url)
    finally:
        stop.set()  # also when something above failed: no phone outlives the trial
        server.crash()
    elapsed = time.monotonic() - started
    held = client_acknowledged(phones)
    for phone in phones:
        phone.client.close()
    acknowledged = meter.acknowledged | held
    return CrashReport(
        kills=done,
        restarts=server.starts - 1,
        seconds=elapsed,
        recorded=sum(len(phone.recorded) for phone in phones),
        acknowledged=len(acknowledged),
        client_acknowledged_not_metered=sorted(held - meter.acknowledged),
        store=check_store(database_url or folder / "doorstep.db", acknowledged, meter.agreements),
        ledger=ledger,
        ready=[*server.ready_answers, ready],
        meter=meter,
        still_queued=still_queued,
        phone_errors=phone_errors(phones),
    )


@dataclass
class ContentionReport:
    """Figures of one contention trial."""

    agents: int
    workers: int
    worker_class: str
    seconds: float
    meter: Meter
    records_stored: int
    store: StoreCheck
    locked_in_log: int
    errors_in_log: int
    phone_errors: list[str]

    def lines(self) -> list[str]:
        """The figures, one per line."""
        meter, seconds = self.meter, self.seconds
        pushes = len(meter.push_ms)
        return [
            f"{self.agents} agents, {self.workers} {self.worker_class} workers, "
            f"{seconds:.1f} s of pushing and pulling",
            f"throughput: {meter.requests / seconds:.1f} requests/s, "
            f"{len(meter.acknowledged) / seconds:.1f} records/s acknowledged "
            f"({meter.requests} requests, {pushes} pushes, {len(meter.acknowledged)} records)",
            f"push latency: p50 {percentile(meter.push_ms, 50):.0f} ms, "
            f"p99 {percentile(meter.push_ms, 99):.0f} ms, "
            f"max {max(meter.push_ms, default=0):.0f} ms",
            f"answers: {statuses_text(meter.statuses)}; {len(meter.server_errors)} 5xx and "
            f"{meter.locked} 'database is locked' reached a client; {self.locked_in_log} "
            f"'database is locked' and {self.errors_in_log} unhandled errors in the server log; "
            f"{meter.lost} requests without an answer",
            f"store: {len(self.store.missing)} acknowledged records missing, "
            f"{len(self.store.duplicated)} duplicated; integrity_check "
            f"{', '.join(self.store.integrity)}",
        ]


def contention_trial(
    folder: Path,
    *,
    agents: int = 50,
    seconds: float = 10.0,
    workers: int = 4,
    worker_class: str = "sync",
    threads: int = 1,
    agreement_share: float = 0.1,
    seed: int = 12,
    database_url: str | None = None,
) -> ContentionReport:
    """Every agent pushes and pulls from its own thread at once, for `seconds`, on the SQLite
    file in `folder` or the PostgreSQL store at `database_url`."""
    env = store_env(folder, database_url)
    load_demo(env, agents=agents)
    log = folder / "server.log"
    server = Gunicorn(env, log, workers=workers, worker_class=worker_class, threads=threads)
    warmup = Meter()
    # A long timeout: a slow answer under contention is a latency figure, not a lost request.
    phones = make_phones(server.base_url, folder, warmup, agents, seed, PASSWORD, timeout_s=60)
    try:
        server.start()
        in_parallel(Phone.morning, phones)  # logins and first pulls, not timed
        meter = Meter()
        for phone in phones:
            phone.transport.meter = meter
        started = time.monotonic()
        drive(phones, seconds=seconds, agreement_share=agreement_share)
        elapsed = time.monotonic() - started
        for phone in phones:
            phone.transport.meter = warmup
        drain(phones)
    finally:
        server.stop()
    acknowledged = meter.acknowledged | warmup.acknowledged | client_acknowledged(phones)
    for phone in phones:
        phone.client.close()
    store = check_store(database_url or folder / "doorstep.db", acknowledged, set())
    return ContentionReport(
        agents=agents,
        workers=workers,
        worker_class=worker_class if threads == 1 else f"{worker_class}x{threads}",
        seconds=elapsed,
        meter=meter,
        records_stored=store.stored,
        store=store,
        locked_in_log=log_mentions(log, LOCKED),
        errors_in_log=log_mentions(log, "unhandled error"),
        phone_errors=phone_errors(phones),
    )
