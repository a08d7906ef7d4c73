"""Plumbing shared by the crash-safety and contention tests and `python -m bench.soak`.

- `Gunicorn`: a master and its workers in their own process group on a fixed loopback
  port; a worker or the master can be SIGKILLed and the server started again on the same
  database and port. Only the processes it started are ever signalled, by PID or by the
  process group it created.
- `Phone`: the reference client (`sync.client.FieldClient`) over HTTP, behind a
  `MeteredTransport` that counts every answer (5xx, "database is locked", requests lost on
  the network), times pushes and notes, independently of the client, every record a push
  answered with accepted, flagged or duplicate.
- `check_store`: what must hold in the SQLite file afterwards.

Every loop here is bounded by a count and by a deadline.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from server.demo import data as demo_data
from server.storage.connection import connection_settings, open_db
from sync.client import (
    ACKNOWLEDGED,
    BackoffPolicy,
    ClientError,
    FieldClient,
    HttpTransport,
    TransportError,
    TransportResponse,
)

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSWORD = "reliability-password"
# Loopback waits: a restarting server is back within a couple of seconds.
PHONE_BACKOFF = BackoffPolicy(base_s=0.05, cap_s=0.5, max_attempts=8, max_total_s=4.0)
OUTCOMES = ("met_borrower", "not_home", "promise_to_pay", "refused", "third_party_met")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LOCKED = "database is locked"


def server_env(folder: Path) -> dict[str, str]:
    """The environment of a load-test server: its own database, limits out of the way."""
    return {
        **os.environ,
        "DOORSTEP_DATABASE": str(folder / "doorstep.db"),
        "DOORSTEP_DEMO_PASSWORD": PASSWORD,
        # Argon2 stays in the path, at a cost that lets hundreds of phones log in quickly.
        "DOORSTEP_PASSWORD_TIME_COST": "1",
        "DOORSTEP_PASSWORD_MEMORY_COST_KIB": "1024",
        "DOORSTEP_ACCESS_TOKEN_TTL_S": "86400",
        # The buckets are per worker and would answer 429 to a load test; 429 is tested apart.
        "DOORSTEP_RATE_PER_DEVICE_PER_MIN": "1000000",
        "DOORSTEP_RATE_PER_ADDRESS_PER_MIN": "1000000",
        "DOORSTEP_LOGIN_MAX_FAILURES_PER_ADDRESS": "100000",
    }


def load_demo(env: Mapping[str, str], *, agents: int, visits_per_agent: int = 3) -> None:
    """`flask demo` into the server's database: agents agent01…, each with a planned day."""
    command = [str(BIN / "flask"), "--app", "wsgi", "demo", "--agents", str(agents)]
    command += ["--visits-per-agent", str(visits_per_agent), "--borrowers", "2000"]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)


def free_port() -> int:
    """A port nobody listens on now, on the loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# --- the server -------------------------------------------------------------------------


class Gunicorn:
    """gunicorn in its own process group on 127.0.0.1:port; killable, restartable."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_path: Path,
        *,
        workers: int,
        worker_class: str = "sync",
        threads: int = 1,
        extra: Sequence[str] = (),
    ) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/api/v1"
        self.command = [
            str(BIN / "gunicorn"),
            f"--workers={workers}",
            f"--worker-class={worker_class}",
            f"--threads={threads}",
            f"--bind=127.0.0.1:{self.port}",
            "--graceful-timeout=1",
            "--no-control-socket",
            "--log-level=warning",
            *extra,
            "wsgi:app",
        ]
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.ready_answers: list[dict[str, Any]] = []  # /ready's store settings, per start

    def start(self, within_s: float = 30.0) -> None:
        """Start the master and wait until /ready answers 200."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group: killpg reaches only it
            )
        self.starts += 1
        probe = HttpTransport(self.base_url, timeout=2)
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                answer = probe.request("GET", "/ready")
                if answer.status == 200:
                    self.ready_answers.append(answer.body["store"])
                    return
            except TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer /ready within {within_s} s")

    @property
    def master_pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def worker_pids(self) -> list[int]:
        """Live children of the current master."""
        return [pid for pid, ppid, _ in _live_processes() if ppid == self.master_pid]

    def group_pids(self) -> list[int]:
        """Live members of the process group this object created (orphans included)."""
        return [pid for pid, _, group in _live_processes() if group == self.master_pid]

    def wait_for_workers(self, within_s: float = 20.0) -> bool:
        """Wait until the master has its full pool again."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if len(self.worker_pids()) >= self.workers:
                return True
            time.sleep(0.1)
        return False

    def kill_worker(self, rng: random.Random) -> int | None:
        """SIGKILL one worker chosen at random; None when none is alive right now."""
        pids = self.worker_pids()
        if not pids:
            return None
        victim = rng.choice(pids)
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            return None
        return victim

    def kill_master(self, orphan_grace_s: float = 0.0) -> None:
        """SIGKILL the master; after `orphan_grace_s`, SIGKILL its orphaned workers too,
        as a supervisor killing the service's control group would."""
        assert self.process is not None, "not started"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        time.sleep(orphan_grace_s)  # orphans may still answer (and commit) meanwhile
        self._kill_group()

    def stop(self) -> None:
        """SIGTERM the group, then SIGKILL whatever is left; always safe to call."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._kill_group()

    def crash(self) -> None:
        """SIGKILL the master and every worker at once: the file is left as a crash leaves it."""
        if self.process is not None and self.process.poll() is None:
            self.kill_master()
        self._kill_group()

    def _kill_group(self) -> None:
        deadline = time.monotonic() + 10
        while self.group_pids() and time.monotonic() < deadline:
            try:
                os.killpg(self.master_pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def _live_processes() -> list[tuple[int, int, int]]:
    """(pid, ppid, process group) of every live process, from /proc; zombies left out."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid, group = stat.rsplit(")", 1)[1].split()[:3]
        if state not in ("Z", "X"):
            found.append((int(entry.name), int(ppid), int(group)))
    return found


def log_mentions(log_path: Path, text: str) -> int:
    """How many lines of a server log mention `text`."""
    if not log_path.exists():
        return 0
    lines = log_path.read_text(errors="replace").splitlines()
    return sum(text in line for line in lines)


# --- the phones -------------------------------------------------------------------------


@dataclass
class Meter:
    """Every answer the phones saw; safe to share between threads."""

    statuses: Counter[int] = field(default_factory=Counter)
    lost: int = 0  # requests that got no answer: refused, reset, timed out
    locked: int = 0  # answers that mention "database is locked"
    server_errors: list[str] = field(default_factory=list)
    push_ms: list[float] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    agreements: set[str] = field(default_factory=set)
    rejected: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def requests(self) -> int:
        """Requests that got an answer."""
        return sum(self.statuses.values())

    def lost_one(self) -> None:
        with self._lock:
            self.lost += 1

    def observe(
        self, method: str, path: str, json: Any, response: TransportResponse, elapsed_s: float
    ) -> None:
        """Count one answer; for a push, note what it acknowledged."""
        with self._lock:
            self.statuses[response.status] += 1
            if LOCKED in str(response.body).lower():
                self.locked += 1
            if response.status >= 500:
                self.server_errors.append(f"{method} {path}: {response.status} {response.body}")
            if path != "/sync/push":
                return
            self.push_ms.append(elapsed_s * 1000)
            if response.status != 200:
                return
            kinds = {record["id"]: record["kind"] for record in json["records"]}
            for outcome in response.body["outcomes"]:
                record_id, status = outcome["record_id"], outcome["status"]
                if status in ACKNOWLEDGED:
                    self.acknowledged.add(record_id)
                    if kinds.get(record_id) == "agreement":
                        self.agreements.add(record_id)
                elif status == "rejected":
                    self.rejected[record_id] = f"{outcome['reason']}: {outcome['message']}"


class MeteredTransport:
    """An HttpTransport whose answers are counted by a Meter (which can be swapped)."""

    def __init__(self, inner: HttpTransport, meter: Meter) -> None:
        self.inner = inner
        self.meter = meter
        self.auth_headers: dict[str, str] = {}  # the client's latest token and device id

    def request(self, method: str, path: str, *, json: Any = None, **options: Any):
        """Send, time and count one request."""
        headers = options.get("headers") or {}
        if "Authorization" in headers:
            self.auth_headers = dict(headers)
        started = time.perf_counter()
        try:
            response = self.inner.request(method, path, json=json, **options)
        except TransportError:
            self.meter.lost_one()
            raise
        self.meter.observe(method, path, json, response, time.perf_counter() - started)
        return response


@dataclass
class Phone:
    """One agent's phone: the reference client, its badge and the visits of its day."""

    client: FieldClient
    transport: MeteredTransport
    badge: str
    rng: random.Random
    visits: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    recorded: int = 0

    def morning(self) -> None:
        """Log in and pull the day (Argon2 happens here, before anything is timed)."""
        self.client.login()
        self.sync()
        self.visits = self.client.cards()

    def record_visit(self, agreement_share: float) -> None:
        """Record a visit offline: badge shown, the report, sometimes a signed agreement."""
        if not self.visits:
            return
        card = self.rng.choice(self.visits)
        client, visit_id, now = self.client, card["id"], datetime.now(UTC)
        borrower = card.get("borrower") or {}
        home = borrower.get("home_geo") or {"lat": 31.23, "lon": 121.47}
        client.record_agent_credential(visit_id, self.badge, borrower_acknowledged=True)
        signs = self.rng.random() < agreement_share
        client.record_visit_report(
            visit_id,
            arrived_at=now - timedelta(minutes=3),
            contacted_at=now - timedelta(minutes=2),
            departed_at=now,
            outcome="agreement_signed" if signs else self.rng.choice(OUTCOMES),
            location={"lat": home["lat"], "lon": home["lon"], "accuracy_m": 10},
        )
        self.recorded += 2
        if signs:
            due = now.date()
            client.record_agreement(
                visit_id=visit_id,
                case_id=card["case_id"],
                installments=[(due + timedelta(days=30 * n), "400.00") for n in (1, 2, 3)],
                currency=borrower.get("currency", "CNY"),
                template_id="repayment-plan-zh",
                template_version=1,
                borrower_signature=PNG_MAGIC + self.rng.randbytes(48),
                agent_signature=PNG_MAGIC + self.rng.randbytes(48),
                signed_at=now,
                lat=f"{home['lat']:.6f}",
                lon=f"{home['lon']:.6f}",
            )
            self.recorded += 1

    def view_day(self) -> None:
        """GET /me/day with the client's token: every card served is written to the ledger."""
        with contextlib.suppress(TransportError):  # counted by the meter; it looks again later
            self.transport.request("GET", "/me/day", headers=self.transport.auth_headers)

    def sync(self) -> None:
        """One sync pass; a pass the network cut short leaves its records queued."""
        try:
            result = self.client.sync()
        except ClientError as error:
            self.errors.append(f"{type(error).__name__}: {error}")
            return
        if result.stopped == "wiped":
            self.errors.append(f"wiped: {result.error}")

    def queued(self) -> int:
        return self.client.report().queued


def make_phones(
    base_url: str, folder: Path, meter: Meter, count: int, seed: int, timeout_s: float = 5.0
) -> list[Phone]:
    """Phones for the demo agents agent01…; each with its own store and device id."""
    run = uuid.uuid4().hex[:6]
    rng = random.Random(seed)
    phones = []
    for agent in demo_data.demo_agents(count):
        transport = MeteredTransport(HttpTransport(base_url, timeout=timeout_s), meter)
        phone_rng = random.Random(rng.random())
        client = FieldClient(
            transport,
            folder / f"{agent['username']}-{run}.db",
            agent["username"],
            PASSWORD,
            f"rel-{run}-{agent['username']}",
            backoff=PHONE_BACKOFF,
            rng=phone_rng,
        )
        phones.append(Phone(client, transport, agent["badge_number"], phone_rng))
    return phones


def in_parallel(work: Callable[[Any], Any], items: Iterable[Any], threads: int = 16) -> None:
    """Run `work` on every item on a small thread pool; re-raise the first failure."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(work, items):
            pass


def drive(
    phones: Sequence[Phone],
    *,
    seconds: float,
    agreement_share: float,
    day_view_share: float = 0.3,
    pause_s: float = 0.0,
    stop: threading.Event | None = None,
    max_rounds: int = 100_000,
) -> None:
    """Every phone records a visit then syncs, in its own thread, until time or `stop`."""
    stop = stop or threading.Event()
    deadline = time.monotonic() + seconds

    def work(phone: Phone) -> None:
        for _ in range(max_rounds):
            if stop.is_set() or time.monotonic() > deadline:
                return
            phone.record_visit(agreement_share)
            phone.sync()
            if phone.rng.random() < day_view_share:
                phone.view_day()
            if pause_s:
                time.sleep(phone.rng.uniform(0, pause_s))

    threads = [threading.Thread(target=work, args=(phone,), daemon=True) for phone in phones]
    for thread in threads:
        thread.start()
    for thread in threads:  # each pass is bounded by the client's backoff budget
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + 60)


def drain(phones: Sequence[Phone], rounds: int = 3) -> int:
    """Sync every phone with records still queued, a few times; returns what stays queued."""
    for _ in range(rounds):
        waiting = [phone for phone in phones if phone.queued()]
        if not waiting:
            return 0
        in_parallel(Phone.sync, waiting)
    return sum(phone.queued() for phone in phones)


def client_acknowledged(phones: Iterable[Phone]) -> set[str]:
    """Records the phones' own outboxes hold as acknowledged."""
    return {
        entry.id
        for phone in phones
        for entry in phone.client.outbox_state()
        if entry.state == "acknowledged"
    }


def verify_ledger(base_url: str) -> dict[str, Any]:
    """GET /audit/verify as the demo privacy officer."""
    http = HttpTransport(base_url, timeout=60)
    login = http.request(
        "POST", "/auth/login", json={"username": "privacy01", "password": PASSWORD}
    )
    assert login.status == 200, login.body
    headers = {"Authorization": f"Bearer {login.body['access_token']}"}
    answer = http.request("GET", "/audit/verify", headers=headers)
    assert answer.status == 200, answer.body
    return answer.body


def ready_store(base_url: str) -> dict[str, Any]:
    """The store settings the running server reports on /ready."""
    answer = HttpTransport(base_url, timeout=10).request("GET", "/ready")
    assert answer.status == 200, answer.body
    return answer.body["store"]


# --- the store --------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreCheck:
    """What the SQLite file holds, against what the phones were told."""

    integrity: list[str]
    settings: dict[str, object]
    stored: int
    missing: list[str]
    duplicated: list[str]
    receipts_missing: list[str]


def check_store(db_path: Path, acknowledged: set[str], agreements: set[str]) -> StoreCheck:
    """integrity_check, and every acknowledged record (and agreement receipt) exactly once."""
    db = open_db(str(db_path))
    try:
        integrity = [row[0] for row in db.execute("PRAGMA integrity_check")]
        counts = Counter(row[0] for row in db.execute("SELECT id FROM sync_records"))
        receipts = Counter(
            row[0] for row in db.execute("SELECT agreement_id FROM agreement_receipts")
        )
        settings = connection_settings(db)
    finally:
        db.conn.close()
    return StoreCheck(
        integrity=integrity,
        settings=settings,
        stored=sum(counts.values()),
        missing=sorted(i for i in acknowledged if counts[i] == 0),
        duplicated=sorted(i for i in acknowledged if counts[i] > 1),
        receipts_missing=sorted(i for i in agreements & acknowledged if receipts[i] != 1),
    )


# --- the trials (the tests run them small, `python -m bench.soak` large) ------------------


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
            f"answers: {self.meter.requests} ({_statuses(self.meter.statuses)}), "
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
) -> CrashReport:
    """Phones push and pull while workers and the master are SIGKILLed at random moments.

    A master kill is followed by SIGKILL of its orphaned workers (a supervisor stopping the
    service's control group) and a fresh gunicorn on the same database and port. At the end
    the whole group is SIGKILLed once more, and the file is checked as that crash left it.
    """
    env = server_env(folder)
    load_demo(env, agents=agents)
    rng = random.Random(seed)
    plan = ["master" if rng.random() < master_share else "worker" for _ in range(kills)]
    if kills >= 3 and "master" not in plan:
        plan[kills // 2] = "master"
    server = Gunicorn(env, folder / "server.log", workers=workers)
    meter = Meter()
    phones = make_phones(server.base_url, folder, meter, agents, seed)
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
        ledger = verify_ledger(server.base_url)
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
        recorded=sum(phone.recorded for phone in phones),
        acknowledged=len(acknowledged),
        client_acknowledged_not_metered=sorted(held - meter.acknowledged),
        store=check_store(folder / "doorstep.db", acknowledged, meter.agreements),
        ledger=ledger,
        ready=[*server.ready_answers, ready],
        meter=meter,
        still_queued=still_queued,
        phone_errors=[error for phone in phones for error in phone.errors],
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
            f"answers: {_statuses(meter.statuses)}; {len(meter.server_errors)} 5xx and "
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
) -> ContentionReport:
    """Every agent pushes and pulls from its own thread at once, for `seconds`."""
    env = server_env(folder)
    load_demo(env, agents=agents)
    log = folder / "server.log"
    server = Gunicorn(env, log, workers=workers, worker_class=worker_class, threads=threads)
    warmup = Meter()
    # A long timeout: a slow answer under contention is a latency figure, not a lost request.
    phones = make_phones(server.base_url, folder, warmup, agents, seed, timeout_s=60)
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
    store = check_store(folder / "doorstep.db", acknowledged, set())
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
        phone_errors=[error for phone in phones for error in phone.errors],
    )


@dataclass
class SlowClientReport:
    """What normal requests saw while slow clients trickled their headers in."""

    slow_clients: int
    worker_class: str
    workers: int
    threads: int
    seconds: float
    latencies_ms: list[float]
    statuses: Counter[str]
    slow_still_open: int

    @property
    def served(self) -> int:
        return self.statuses["200"]

    def lines(self) -> list[str]:
        """The figures, one per line."""
        return [
            f"{self.slow_clients} slow clients (one header byte every 0.5 s) against "
            f"{self.workers} {self.worker_class} workers x {self.threads} threads for "
            f"{self.seconds:.0f} s: "
            f"{self.slow_still_open} still connected at the end",
            f"normal requests: {self.served}/{sum(self.statuses.values())} answered 200 "
            f"({_statuses(self.statuses)}), p50 {percentile(self.latencies_ms, 50):.0f} ms, "
            f"max {max(self.latencies_ms, default=0):.0f} ms",
        ]


def slow_client_trial(
    folder: Path,
    *,
    slow_clients: int = 3,
    seconds: float = 6.0,
    worker_class: str = "gthread",
    workers: int = 2,
    threads: int = 4,
    request_timeout_s: float = 5.0,
) -> SlowClientReport:
    """Slowloris: sockets send a request's headers a byte at a time while /ready is asked
    for every 0.2 s. A slow socket holds a gthread thread, or a whole sync worker."""
    server = Gunicorn(
        server_env(folder),
        folder / "server.log",
        workers=workers,
        worker_class=worker_class,
        threads=threads,
        extra=["--timeout=30", "--keep-alive=2"],
    )
    probe = HttpTransport(server.base_url, timeout=request_timeout_s)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    slow: list[socket.socket] = []
    try:
        server.start()
        for _ in range(slow_clients):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=2)
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            slow.append(sock)
        started = time.monotonic()
        next_byte = started
        for _ in range(int(seconds / 0.2) + 1):
            if time.monotonic() - started > seconds:
                break
            if time.monotonic() >= next_byte:
                for sock in slow:
                    _send_quietly(sock, b"a")
                next_byte += 0.5
            began = time.perf_counter()
            try:
                status = str(probe.request("GET", "/ready").status)
            except TransportError as error:
                status = f"lost ({error})"
            latencies.append((time.perf_counter() - began) * 1000)
            statuses[status] += 1
            time.sleep(0.2)
        still_open = sum(_still_open(sock) for sock in slow)
    finally:
        for sock in slow:
            sock.close()
        server.stop()
    return SlowClientReport(
        slow_clients, worker_class, workers, threads, seconds, latencies, statuses, still_open
    )


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server may hang up on a slow client
        sock.sendall(data)


def _still_open(sock: socket.socket) -> bool:
    """True when the server has neither answered nor closed this connection."""
    sock.setblocking(False)
    try:
        sock.recv(1)  # b"" (closed) or an answer: either way not held open
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def _statuses(counts: Mapping[Any, int]) -> str:
    return ", ".join(f"{status}: {n}" for status, n in sorted(counts.items(), key=str)) or "none"
