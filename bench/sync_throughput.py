"""Push, replay and pull through a real server process on loopback.

- push 10,000 visit reports in batches of 100 (one batch per agent), records/s, and the
  ratio to plain sqlite3 inserts of the same rows into the same kind of table, measured in
  this run (the ceiling);
- replay all batches: records/s, and a pull after it must show no new changes;
- pull a 25-visit day from a fresh cursor: p50/p95.

    .venv/bin/python -m bench.sync_throughput [--agents 100] [--per-visit 4] [--pulls 200]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import requests

from bench.common import bench_env, flask, login, scratch_dir, server, summary


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_batch(visits: list[dict], per_visit: int, now: datetime) -> list[dict]:
    records, seq = [], 0
    for visit in visits:
        home = visit["borrower"]["home_geo"]
        for n in range(per_visit):
            seq += 1
            arrived = now - timedelta(hours=2) + timedelta(minutes=n)
            records.append(
                {
                    "id": str(uuid.uuid4()),
                    "kind": "visit_report",
                    "visit_id": visit["id"],
                    "device_seq": seq,
                    "recorded_at": iso(arrived + timedelta(minutes=5)),
                    "body": {
                        "arrived_at": iso(arrived),
                        "departed_at": iso(arrived + timedelta(minutes=4)),
                        "outcome": "not_home",
                        "notes": f"attempt {n}",
                        "location": {"lat": home["lat"], "lon": home["lon"], "accuracy_m": 12},
                    },
                }
            )
    return records


def sqlite_ceiling(workdir, batches: list[list[dict]]) -> float:
    """Plain sqlite3 inserts of the same rows, same journal settings, one txn per batch."""
    conn = sqlite3.connect(workdir / "ceiling.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE r (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, kind TEXT, "
        "visit_id INTEGER, device_seq INTEGER, recorded_at TEXT, body TEXT)"
    )
    started = time.perf_counter()
    for batch in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO r (id, kind, visit_id, device_seq, recorded_at, body) "
            "VALUES (?,?,?,?,?,?)",
            [
                (
                    r["id"],
                    r["kind"],
                    r["visit_id"],
                    r["device_seq"],
                    r["recorded_at"],
                    json.dumps(r["body"]),
                )
                for r in batch
            ],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return sum(len(b) for b in batches) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--visits-per-agent", type=int, default=25)
    parser.add_argument("--per-visit", type=int, default=4)
    parser.add_argument("--pulls", type=int, default=200)
    parser.add_argument("--borrowers", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=1, help="concurrent pushing devices")
    args = parser.parse_args()
    with scratch_dir() as workdir:
        env = bench_env(workdir)
        flask(
            env,
            "demo",
            "--borrowers",
            str(args.borrowers),
            "--agents",
            str(args.agents),
            "--visits-per-agent",
            str(args.visits_per_agent),
        )
        with server(env, workers=2) as base:
            http = requests.Session()
            agents = []
            for n in range(1, args.agents + 1):
                headers = login(base, f"agent{n:02d}")  # each enrols a new phone
                pulled = http.get(
                    f"{base}/sync/pull", params={"limit": 200}, headers=headers, timeout=30
                ).json()
                agents.append((headers, pulled["upserts"], pulled["cursor"]))
            now = datetime.now(UTC)
            batches = [make_batch(visits, args.per_visit, now) for _, visits, _ in agents]
            total = sum(len(b) for b in batches)
            ceiling = sqlite_ceiling(workdir, batches)

            def push_one(item) -> list[str]:
                (headers, _, _), batch = item
                body = {"device_time": iso(datetime.now(UTC)), "records": batch}
                response = requests.post(
                    f"{base}/sync/push", json=body, headers=headers, timeout=60
                )
                response.raise_for_status()
                return [outcome["status"] for outcome in response.json()["outcomes"]]

            def push_all() -> tuple[float, dict[str, int]]:
                statuses: dict[str, int] = {}
                started = time.perf_counter()
                with ThreadPoolExecutor(max_workers=args.clients) as pool:
                    for answer in pool.map(push_one, zip(agents, batches, strict=True)):
                        for status in answer:
                            statuses[status] = statuses.get(status, 0) + 1
                return total / (time.perf_counter() - started), statuses

            first_rate, first = push_all()
            print(
                f"push ({args.clients} concurrent device(s)): {total} records in batches of "
                f"{len(batches[0])}: {first_rate:,.0f} "
                f"records/s {first}"
            )
            print(
                f"ceiling (plain sqlite3, same rows, WAL, synchronous=FULL): {ceiling:,.0f} "
                f"records/s; push is {ceiling / first_rate:.1f}x below it"
            )
            after_first = []
            for headers, _, cursor in agents[:5]:
                page = http.get(
                    f"{base}/sync/pull",
                    params={"cursor": cursor, "limit": 200},
                    headers=headers,
                    timeout=30,
                ).json()
                after_first.append(page["cursor"])
            replay_rate, replayed = push_all()
            print(f"replay: {replay_rate:,.0f} records/s {replayed}")
            changes = 0
            for (headers, _, _), cursor in zip(agents[:5], after_first, strict=True):
                page = http.get(
                    f"{base}/sync/pull",
                    params={"cursor": cursor, "limit": 200},
                    headers=headers,
                    timeout=30,
                ).json()
                changes += len(page["upserts"]) + len(page["outcomes"])
            print(f"changes to pull after the replay (5 devices): {changes}")
            headers = agents[0][0]
            latencies = []
            for _ in range(args.pulls):
                t0 = time.perf_counter()
                page = http.get(
                    f"{base}/sync/pull", params={"limit": 200}, headers=headers, timeout=30
                ).json()
                latencies.append((time.perf_counter() - t0) * 1000)
            print(
                f"pull of a {len(page['upserts'])}-visit day from a fresh cursor: "
                f"{summary(latencies)}"
            )


if __name__ == "__main__":
    main()
