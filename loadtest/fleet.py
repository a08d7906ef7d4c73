"""Many phones at once: made for the demo agents, driven from threads, drained at the end.

Every loop here is bounded by a count and by a deadline.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sync.client import BackoffPolicy, FieldClient, HttpTransport

from .logins import demo_agents
from .phone import Phone
from .transport import FaultyTransport, Meter

# Loopback waits: a restarting server is back within a couple of seconds.
PHONE_BACKOFF = BackoffPolicy(base_s=0.05, cap_s=0.5, max_attempts=8, max_total_s=4.0)


def make_phones(
    base_url: str,
    folder: Path,
    meter: Meter,
    count: int,
    seed: int,
    password: str,
    timeout_s: float = 5.0,
) -> list[Phone]:
    """Metered phones for the demo agents agent01…; each with its own store and device id."""
    run = uuid.uuid4().hex[:6]
    rng = random.Random(seed)
    phones = []
    for agent in demo_agents(count):
        transport = FaultyTransport(HttpTransport(base_url, timeout=timeout_s), meter)
        phone_rng = random.Random(rng.random())
        client = FieldClient(
            transport,
            folder / f"{agent['username']}-{run}.db",
            agent["username"],
            password,
            None,  # a new phone: it enrols at its first login
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
            phone.record_random_visit(agreement_share)
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


def phone_errors(phones: Sequence[Phone]) -> list[str]:
    """What went wrong on the phones; in a load trial a wiped phone is an error too."""
    errors = [error for phone in phones for error in phone.errors]
    return errors + [f"{phone.username}: wiped" for phone in phones if phone.wiped]
