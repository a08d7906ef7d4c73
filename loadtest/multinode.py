"""Several app servers on one PostgreSQL store: phones push through all of them (each
request to the next node, as a round-robin load balancer sends it) while whole nodes are
SIGKILLed and restarted; then every acknowledged record must be stored exactly once and
the ledger must verify.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

from sync.client.transport import HttpTransport

from .checks import StoreCheck, check_store, verify_ledger
from .fleet import client_acknowledged, drain, drive, in_parallel, make_phones, phone_errors
from .logins import demo_logins
from .server_process import PASSWORD, Gunicorn, load_demo, store_env
from .transport import Meter


class Spread:
    """A transport that sends each request to the next node in turn."""

    def __init__(self, base_urls: list[str], timeout: float) -> None:
        self.nodes = [HttpTransport(url, timeout=timeout) for url in base_urls]
        self._next = count()
        self._lock = threading.Lock()

    def request(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            node = self.nodes[next(self._next) % len(self.nodes)]
        return node.request(*args, **kwargs)


@dataclass
class MultiNodeReport:
    nodes: int
    kills: int
    seconds: float
    acknowledged: int
    store: StoreCheck
    ledger: dict[str, Any]
    meter: Meter
    still_queued: int
    phone_errors: list[str]

    def lines(self) -> list[str]:
        return [
            f"{self.nodes} app servers on one PostgreSQL store, {self.kills} whole-node "
            f"SIGKILLs (each restarted) in {self.seconds:.1f} s",
            f"records: {self.acknowledged} acknowledged, {self.store.stored} stored, "
            f"{len(self.store.missing)} acknowledged lost, {len(self.store.duplicated)} "
            f"duplicated, {len(self.store.receipts_missing)} agreements without a receipt",
            f"answers: {self.meter.requests}, {self.meter.lost} lost to the kills, "
            f"{len(self.meter.server_errors)} 5xx, {self.still_queued} still queued; ledger "
            f"intact: {self.ledger.get('intact')} ({self.ledger.get('entries_checked')} entries)",
        ]


def multi_node_trial(
    folder: Path,
    database_url: str,
    *,
    nodes: int = 3,
    agents: int = 6,
    kills: int = 3,
    workers: int = 2,
    gap_s: tuple[float, float] = (0.7, 1.5),
    seed: int = 17,
    max_seconds: float = 300.0,
) -> MultiNodeReport:
    """Phones push and pull through `nodes` gunicorn servers sharing `database_url` while
    a random node is SIGKILLed (master and workers) and restarted, `kills` times."""
    env = store_env(folder, database_url)  # one signing key shared by every node
    load_demo(env, agents=agents)
    rng = random.Random(seed)
    servers = [Gunicorn(env, folder / f"node{n}.log", workers=workers) for n in range(nodes)]
    meter = Meter()
    officer = demo_logins(PASSWORD, agents).staff("privacy_officer")
    stop = threading.Event()
    started = time.monotonic()
    done = 0
    try:
        for server in servers:
            server.start()
        phones = make_phones(servers[0].base_url, folder, meter, agents, seed, PASSWORD)
        for phone in phones:
            phone.transport.inner = Spread([s.base_url for s in servers], timeout=5.0)
        in_parallel(lambda phone: phone.morning(), phones)
        load = threading.Thread(
            target=drive,
            args=(phones,),
            kwargs={
                "seconds": max_seconds,
                "agreement_share": 0.15,
                "pause_s": 0.05,
                "stop": stop,
            },
        )
        load.start()
        for _ in range(kills):
            if time.monotonic() > started + max_seconds:
                break
            time.sleep(rng.uniform(*gap_s))
            victim = rng.choice(servers)
            victim.kill_master(orphan_grace_s=rng.uniform(0, 0.2))
            victim.start()
            done += 1
        time.sleep(gap_s[1])
        stop.set()
        load.join(timeout=120)
        for server in servers:
            server.wait_for_workers()
        still_queued = drain(phones)
        ledger = verify_ledger(servers[1].base_url, officer.username, officer.password)
    finally:
        stop.set()
        for server in servers:
            server.crash()
    held = client_acknowledged(phones)
    for phone in phones:
        phone.client.close()
    acknowledged = meter.acknowledged | held
    return MultiNodeReport(
        nodes=nodes,
        kills=done,
        seconds=time.monotonic() - started,
        acknowledged=len(acknowledged),
        store=check_store(database_url, acknowledged, meter.agreements),
        ledger=ledger,
        meter=meter,
        still_queued=still_queued,
        phone_errors=phone_errors(phones),
    )
