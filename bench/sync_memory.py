"""Push a growing store through a real server process and watch what grows with it.

Builds a demo database (`--borrowers`, `--agents` with 25 visits each), starts gunicorn on
127.0.0.1 and pushes batches of 100 records (one agent's day: visit reports, and every
`--contact-every`-th record a logged phone call) until `--records` are sent or
`--max-seconds` pass. Each round of batches is a day later than the one before, so the
frequency rules' windows slide along as a real fleet's would. Every `--every` records it
prints: records stored, store size on disk (database and WAL), RSS of each worker and the
peak, server CPU (all workers) per batch since the last line, and the p50 batch latency.

    .venv/bin/python -m bench.sync_memory [--records 100000] [--agents 80] [--borrowers 12000]
        [--every 20000] [--max-seconds 900] [--clients 2]

Flat means: the CPU per batch in the last line is about the first line's; RSS stays well
under 200 MB per worker.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import string
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from bench.common import agent_days, bench_env, demo, scratch_dir, server_process

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def worker_pids(master: int) -> list[int]:
    """The gunicorn workers: the master's children."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def rss_mb(pid: int) -> float:
    """Resident set size of one process, in MB."""
    resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return resident * PAGE / 1e6


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU of these processes so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def store_mb(database: Path) -> float:
    """The database file and its WAL, in MB."""
    return sum(p.stat().st_size for p in (database, Path(f"{database}-wal")) if p.exists()) / 1e6


def stored_count(database: Path) -> int:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM sync_records").fetchone()[0]
    finally:
        conn.close()


def batch_of(
    visits: list[dict], day: datetime, rng: random.Random, seq: int, contact_every: int
) -> dict:
    """One agent's 100 records of one day: visit reports, and some logged calls."""
    records = []
    for j in range(100):
        visit = visits[j % len(visits)]
        at = day + timedelta(minutes=4 * j)
        record = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "visit_id": visit["id"],
            "device_seq": seq + j,
            "recorded_at": iso(at + timedelta(minutes=5)),
        }
        if contact_every and j % contact_every == contact_every - 1:
            record["kind"] = "contact"
            record["body"] = {
                "channel": "phone_call",
                "occurred_at": iso(at),
                "outcome": rng.choice(("no_answer", "reached", "busy")),
            }
        else:
            home = visit["borrower"]["home_geo"]
            record["kind"] = "visit_report"
            record["body"] = {
                "arrived_at": iso(at),
                "departed_at": iso(at + timedelta(minutes=3)),
                "outcome": rng.choice(("not_home", "promise_to_pay", "refused")),
                "notes": "".join(rng.choice(string.ascii_lowercase + " ") for _ in range(120)),
                "location": {"lat": home["lat"], "lon": home["lon"], "accuracy_m": 12},
            }
        records.append(record)
    return {"device_time": iso(datetime.now(UTC)), "records": records}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=80)
    parser.add_argument("--borrowers", type=int, default=12_000)
    parser.add_argument("--every", type=int, default=20_000)
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument("--clients", type=int, default=2, help="concurrent pushing devices")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--contact-every", type=int, default=10, help="every n-th record is a call (0: none)"
    )
    args = parser.parse_args()
    rng = random.Random(20)
    with scratch_dir() as workdir:
        env = bench_env(workdir)
        database = Path(env["DOORSTEP_DATABASE"])
        demo(env, args.borrowers, args.agents)
        with server_process(env, workers=args.workers) as (base, master):
            agents = agent_days(base, args.agents)
            workers = worker_pids(master)
            rounds = -(-args.records // (100 * len(agents)))
            # Round r is r days after the first; the last round is yesterday morning.
            first_day = datetime.now(UTC).replace(hour=7, minute=0, second=0, microsecond=0)
            first_day -= timedelta(days=rounds)
            sessions = [requests.Session() for _ in range(args.clients)]

            def push(item: tuple[int, dict, dict]) -> tuple[float, dict[str, float]]:
                slot, headers, body = item
                started = time.perf_counter()
                answer = sessions[slot].post(
                    f"{base}/sync/push",
                    data=json.dumps(body),
                    headers={**headers, "Content-Type": "application/json"},
                    timeout=120,
                )
                answer.raise_for_status()
                counts: dict[str, float] = {}
                for outcome in answer.json()["outcomes"]:
                    counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
                # The server's own phase timings (DOORSTEP_SERVER_TIMING), summed per line.
                for part in filter(None, answer.headers.get("Server-Timing", "").split(", ")):
                    name, _, dur = part.partition(";dur=")
                    counts[f"ms:{name}"] = float(dur or 0)
                return (time.perf_counter() - started) * 1000, counts

            print(
                f"{args.agents} agents, {args.borrowers} borrowers, batches of 100, "
                f"{args.clients} client(s), {len(workers)} workers; up to {args.records} "
                f"records or {args.max_seconds:.0f} s"
            )
            print(
                "records_sent stored store_MB rss_MB_per_worker peak_MB "
                "cpu_ms_per_batch p50_ms statuses phases_ms_per_batch"
            )
            began = time.monotonic()
            sent, mark, peak = 0, 0, 0.0
            cpu_mark, latencies, statuses = cpu_seconds(workers), [], {}
            batches_since = 0
            with ThreadPoolExecutor(max_workers=args.clients) as pool:
                for r in range(rounds):
                    day = first_day + timedelta(days=r)
                    items = [
                        (
                            i % args.clients,
                            headers,
                            batch_of(visits, day, rng, r * 100 + 1, args.contact_every),
                        )
                        for i, (headers, visits) in enumerate(agents)
                    ]
                    for start in range(0, len(items), args.clients * 4):
                        chunk = items[start : start + args.clients * 4]
                        for latency, counts in pool.map(push, chunk):
                            latencies.append(latency)
                            for status, n in counts.items():
                                statuses[status] = statuses.get(status, 0) + n
                        sent += 100 * len(chunk)
                        batches_since += len(chunk)
                        peak = max(peak, *(rss_mb(p) for p in workers))
                        done = sent >= args.records or time.monotonic() - began > args.max_seconds
                        if sent - mark >= args.every or done:
                            cpu_now = cpu_seconds(workers)
                            rss = [rss_mb(p) for p in workers]
                            latencies.sort()
                            phases = {
                                k[3:]: round(v / batches_since, 1)
                                for k, v in statuses.items()
                                if k.startswith("ms:")
                            }
                            counted = {k: int(v) for k, v in statuses.items() if ":" not in k}
                            print(
                                f"{sent} {stored_count(database)} {store_mb(database):.0f} "
                                f"{'/'.join(f'{m:.0f}' for m in rss)} {peak:.0f} "
                                f"{(cpu_now - cpu_mark) * 1000 / batches_since:.1f} "
                                f"{latencies[len(latencies) // 2]:.1f} {counted} phases {phases}",
                                flush=True,
                            )
                            mark, cpu_mark, latencies, batches_since = sent, cpu_now, [], 0
                            statuses = {}
                        if done:
                            break
                    else:
                        continue
                    break
            print(f"elapsed {time.monotonic() - began:.0f} s, peak RSS per worker {peak:.0f} MB")


if __name__ == "__main__":
    main()
