"""Sync push and pull through a real server (gunicorn, 2 workers), against raw sqlite3.

In one run, on one workload (visit reports of ~600 bytes on the wire, 100 per batch, one
batch per agent's 25-visit day, one keep-alive connection, like the peers comparison):

- push: records/s of first deliveries (every outcome accepted or flagged);
- replay: the same bodies again (every outcome duplicate), and its ratio to the push;
- pull: p50/p95 of GET /sync/pull of a 25-visit day from a fresh cursor;
- concurrency: two devices pushing at once (two connections) against one, records/s ratio;
- raw sqlite3: the same rows inserted with executemany, WAL, synchronous=FULL, one
  transaction per batch (the ceiling), and how far below it the push is;
- memory: peak and current RSS of each worker after pushing `--rss-records` more records
  (printed at checkpoints, to see whether it grows with the store).

Figures only; nothing here fails on time.

    .venv/bin/python -m bench.sync_fast [--agents 50] [--rss-records 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import string
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from bench.common import agent_days, bench_env, demo, percentile, scratch_dir, server_process
from bench.sync_throughput import sqlite_ceiling


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def batch(visits: list[dict], now: datetime, rng: random.Random, seq0: int) -> list[dict]:
    records = []
    for j in range(100):
        visit = visits[j % len(visits)]
        home = visit["borrower"]["home_geo"]
        arrived = now - timedelta(hours=3) + timedelta(minutes=j % 60)
        records.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "kind": "visit_report",
                "visit_id": visit["id"],
                "device_seq": seq0 + j + 1,
                "recorded_at": iso(arrived + timedelta(minutes=5)),
                "body": {
                    "arrived_at": iso(arrived),
                    "departed_at": iso(arrived + timedelta(minutes=4)),
                    "outcome": "not_home",
                    "notes": "".join(rng.choice(string.ascii_lowercase + " ") for _ in range(300)),
                    "location": {"lat": home["lat"], "lon": home["lon"], "accuracy_m": 12},
                },
            }
        )
    return records


def encoded(records: list[dict]) -> bytes:
    return json.dumps({"device_time": iso(datetime.now(UTC)), "records": records}).encode()


PHASES: dict[str, float] = {}  # Server-Timing phases of the pushes, ms, summed
PHASES_LOCK = threading.Lock()


def phases_per_batch(batches: int) -> str:
    text = ", ".join(f"{name} {ms / batches:.1f}" for name, ms in PHASES.items())
    PHASES.clear()
    return text


def send(http: requests.Session, base: str, headers: dict, body: bytes) -> dict[str, int]:
    answer = http.post(
        f"{base}/sync/push",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
        timeout=120,
    )
    answer.raise_for_status()
    with PHASES_LOCK:  # two devices' threads add to it at once
        for part in filter(None, answer.headers.get("Server-Timing", "").split(", ")):
            name, duration = part.split(";dur=")
            PHASES[name] = PHASES.get(name, 0.0) + float(duration)
    counts: dict[str, int] = {}
    for outcome in answer.json()["outcomes"]:
        counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
    return counts


def push_all(base: str, items: list[tuple[dict, bytes]]) -> tuple[float, dict[str, int]]:
    http = requests.Session()
    totals: dict[str, int] = {}
    started = time.perf_counter()
    for headers, body in items:
        for status, n in send(http, base, headers, body).items():
            totals[status] = totals.get(status, 0) + n
    return time.perf_counter() - started, totals


def workers_of(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def cpu_ms(master: int) -> float:
    """CPU time (user + system) the workers have used so far, in ms: a figure the machine's
    other load disturbs far less than wall time."""
    ticks = 0
    for pid in workers_of(master):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """(peak, current) resident set size in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(values["VmHWM"].split()[0]) / 1024, int(values["VmRSS"].split()[0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--pulls", type=int, default=300)
    parser.add_argument("--rss-records", type=int, default=0, help="0: skip the memory phase")
    parser.add_argument("--max-seconds", type=float, default=1500)
    args = parser.parse_args()
    rng = random.Random(20260601)
    deadline = time.monotonic() + args.max_seconds
    with scratch_dir() as workdir:
        env = bench_env(workdir)
        demo(env, 20_000, args.agents)
        with server_process(env, workers=2) as (base, master):
            http = requests.Session()
            agents = agent_days(base, args.agents)
            now = datetime.now(UTC)
            # First deliveries: one device, then two at once (each half of fresh batches).
            first = [(h, batch(v, now, rng, 0)) for h, v in agents]
            ceiling = sqlite_ceiling(workdir, [records for _, records in first])
            items = [(h, encoded(records)) for h, records in first]
            total = 100 * len(items)
            cpu0 = cpu_ms(master)
            seconds, statuses = push_all(base, items)
            push_rate, push_cpu = total / seconds, (cpu_ms(master) - cpu0) / len(items)
            push_phases = phases_per_batch(len(items))
            cpu0 = cpu_ms(master)
            seconds, replayed = push_all(base, items)
            replay_rate, replay_cpu = total / seconds, (cpu_ms(master) - cpu0) / len(items)
            replay_phases = phases_per_batch(len(items))
            print(f"push: {push_rate:,.0f} records/s {statuses} ({total} records, batches of 100)")
            print(
                f"replay: {replay_rate:,.0f} records/s {replayed}; "
                f"replay/push = {replay_rate / push_rate:.2f}x"
            )
            print(
                f"server CPU per batch of 100: push {push_cpu:.1f} ms, replay {replay_cpu:.1f} ms "
                f"(replay/push by CPU = {push_cpu / replay_cpu:.2f}x)"
            )
            print(f"server phases, ms per batch: push: {push_phases}; replay: {replay_phases}")
            print(
                f"raw sqlite3 (same rows, WAL, synchronous=FULL): {ceiling:,.0f} records/s; "
                f"push is {ceiling / push_rate:.1f}x below it"
            )

            headers = agents[0][0]
            latencies = []
            cpu0 = cpu_ms(master)
            for _ in range(args.pulls):
                t0 = time.perf_counter()
                page = http.get(
                    f"{base}/sync/pull", params={"limit": 200}, headers=headers, timeout=60
                )
                page.json()
                latencies.append((time.perf_counter() - t0) * 1000)
            pull_cpu = (cpu_ms(master) - cpu0) / args.pulls
            print(
                f"pull of a {len(page.json()['upserts'])}-visit day from a fresh cursor: "
                f"server CPU {pull_cpu:.1f} ms per pull, "
                f"p50 {percentile(latencies, 50):.2f} ms, p95 {percentile(latencies, 95):.2f} ms"
            )

            # Concurrency: the same number of fresh batches by one device, then by two.
            def fresh(seq0: int) -> list[tuple[dict, bytes]]:
                return [(h, encoded(batch(v, now, rng, seq0))) for h, v in agents]

            one_items = fresh(1000)
            seconds, _ = push_all(base, one_items)
            one_rate = len(one_items) * 100 / seconds
            one_phases = phases_per_batch(len(one_items))
            two_items = fresh(2000)
            halves = [two_items[0::2], two_items[1::2]]
            results: list[float] = [0.0, 0.0]

            def run(index: int) -> None:
                results[index], _ = push_all(base, halves[index])

            started = time.perf_counter()
            threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            two_rate = len(two_items) * 100 / (time.perf_counter() - started)
            two_phases = phases_per_batch(len(two_items))
            print(
                f"one device: {one_rate:,.0f} records/s; two devices at once: "
                f"{two_rate:,.0f} records/s; ratio {two_rate / one_rate:.2f}x"
            )
            print(f"server phases, ms per batch: one device: {one_phases}; two: {two_phases}")

            pushed = 2 * total + len(one_items) * 100 + len(two_items) * 100
            for pid in workers_of(master):
                peak, now_mb = rss_mb(pid)
                print(
                    f"worker {pid}: peak RSS {peak:.1f} MB, now {now_mb:.1f} MB "
                    f"(after {pushed} pushed records)"
                )
            if args.rss_records:
                memory(base, agents, now, rng, args.rss_records, master, deadline)


def memory(base, agents, now, rng, count: int, master: int, deadline: float) -> None:
    """Push `count` more records, printing the workers' RSS at five checkpoints."""
    http = requests.Session()
    sent, seq0, step = 0, 10_000, max(count // 5, 100)
    started = time.perf_counter()
    next_report = step
    while sent < count and time.monotonic() < deadline:
        for headers, visits in agents:
            send(http, base, headers, encoded(batch(visits, now, rng, seq0)))
            sent += 100
            if sent >= next_report or sent >= count:
                rate = sent / (time.perf_counter() - started)
                sizes = ", ".join(
                    "peak {:.1f} / now {:.1f} MB".format(*rss_mb(pid)) for pid in workers_of(master)
                )
                print(f"  after {sent:,} more records ({rate:,.0f} records/s): {sizes}")
                next_report += step
            if sent >= count or time.monotonic() >= deadline:
                break
        seq0 += 1000
    if sent < count:
        print(f"  stopped at {sent:,} records: --max-seconds reached")


if __name__ == "__main__":
    main()
