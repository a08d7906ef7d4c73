"""PostgreSQL against SQLite, through real app servers on loopback, in one run.

- push: visit reports in batches of 4 x visits (one batch per agent), pushed by `--clients`
  devices at once, records/s and the p50/p99 of one push, on SQLite with 1 app server and
  on PostgreSQL with 1 and with 3 app servers (each request to the next server);
- contention: `--contention` agents (200) each pushing and pulling from its own thread at
  once for `--contention-seconds` (30) against one app server, on each engine: the p50/p99
  of one push, records/s acknowledged, and that no 5xx or lock error reached a phone
  (loadtest/trials.contention_trial, the trial tests/system/test_contention.py runs small);
- ledger: entries/s appended (one entry per write transaction, as a card served is) by 3
  writer processes at once, on each engine.

    .venv/bin/python -m bench.postgres [--agents 60] [--clients 20] [--workers 2]
        [--ledger-appends 300] [--contention 200] [--contention-seconds 30]

`--contention 0` leaves the contention trial out.

Needs PostgreSQL at DOORSTEP_TEST_POSTGRES_URL or 127.0.0.1:5432 (database `test`); each
PostgreSQL run uses a schema of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import bench_env, flask, login, percentile, scratch_dir, server
from bench.sync_throughput import iso, make_batch
from tests import postgres


def _env(workdir: Path, url: str | None) -> dict[str, str]:
    env = bench_env(workdir)
    if url:
        key = workdir / "signing-key.pem"
        key.write_bytes(
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        env.update(
            DOORSTEP_DATABASE_URL=url,
            DOORSTEP_SIGNING_KEY_FILE=str(key),
            DOORSTEP_STATE_DIR=str(workdir),
        )
    return env


def push_run(label: str, url: str | None, servers: int, args: argparse.Namespace) -> float:
    """records/s of pushing every agent's batch through `servers` app servers."""
    with scratch_dir() as workdir, ExitStack() as stack:
        env = _env(workdir, url)
        flask(env, "demo", "--agents", str(args.agents), "--visits-per-agent", "25")
        bases = [stack.enter_context(server(env, workers=args.workers)) for _ in range(servers)]
        agents = []
        for n in range(1, args.agents + 1):
            base = bases[n % servers]
            headers = login(base, f"agent{n:02d}")
            pulled = requests.get(
                f"{base}/sync/pull", params={"limit": 200}, headers=headers, timeout=60
            ).json()
            agents.append((base, headers, make_batch(pulled["upserts"], 4, datetime.now(UTC))))
        total = sum(len(batch) for _, _, batch in agents)

        def push_one(item) -> float:
            base, headers, batch = item
            started = time.perf_counter()
            body = {"device_time": iso(datetime.now(UTC)), "records": batch}
            response = requests.post(f"{base}/sync/push", json=body, headers=headers, timeout=120)
            response.raise_for_status()
            return (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            latencies = list(pool.map(push_one, agents))
        rate = total / (time.perf_counter() - started)
        print(
            f"push {label}: {total} records, {args.clients} devices at once: {rate:,.0f} "
            f"records/s; one push p50 {percentile(latencies, 50):.0f} ms, "
            f"p99 {percentile(latencies, 99):.0f} ms",
            flush=True,
        )
        return rate


def contention_run(label: str, url: str | None, args: argparse.Namespace) -> tuple[float, float]:
    """p50 and p99 of one push with `--contention` agents at once on one app server."""
    from loadtest.figures import percentile as pct
    from loadtest.trials import contention_trial

    with scratch_dir() as workdir:
        report = contention_trial(
            workdir,
            agents=args.contention,
            seconds=args.contention_seconds,
            workers=args.contention_workers,
            database_url=url,
        )
    meter = report.meter
    p50, p99 = pct(meter.push_ms, 50), pct(meter.push_ms, 99)
    print(
        f"contention {label}: {report.agents} agents, {report.workers} workers, "
        f"{report.seconds:.0f} s: push p50 {p50:.0f} ms, p99 {p99:.0f} ms; "
        f"{len(meter.acknowledged) / report.seconds:,.1f} records/s acknowledged, "
        f"{meter.requests / report.seconds:,.1f} requests/s; {len(meter.server_errors)} 5xx, "
        f"{meter.locked} lock errors, {len(report.store.missing)} acknowledged missing, "
        f"{len(report.store.duplicated)} duplicated",
        flush=True,
    )
    return p50, p99


def _append(target: str, appends: int, writer: int, started_at: float) -> None:
    from server.storage import ledger as ledger_rows
    from server.storage.connection import open_db, transaction

    db = open_db(target)
    while time.time() < started_at:
        time.sleep(0.001)
    for n in range(appends):
        entry = {
            "occurred_at": iso(datetime.now(UTC)),
            "user_id": writer,
            "role": "agent",
            "device_id": f"bench-{writer}",
            "borrower_id": n,
            "case_id": n,
            "visit_id": n,
            "fields": '["full_name"]',
            "purpose": "home_visit",
            "endpoint": "GET /sync/pull",
            "request_id": f"bench-{writer}-{n}",
            "outcome": "served",
        }
        with transaction(db):
            ledger_rows.append(db, [entry])
    db.conn.close()


def ledger_run(label: str, url: str | None, args: argparse.Namespace) -> float:
    """entries/s appended by 3 writer processes at once."""
    from server.storage.connection import open_db
    from server.storage.migrations import migrate

    with scratch_dir() as workdir:
        target = url or str(workdir / "ledger.db")
        db = open_db(target)
        migrate(db, iso(datetime.now(UTC)))
        db.conn.close()
        start_at = time.time() + 1.0
        writers = [
            multiprocessing.Process(
                target=_append, args=(target, args.ledger_appends, w + 1, start_at)
            )
            for w in range(3)
        ]
        for process in writers:
            process.start()
        for process in writers:
            process.join(timeout=600)
        elapsed = time.time() - start_at
        db = open_db(target)
        count = db.execute("SELECT count(*) FROM exposure_ledger").fetchone()[0]
        db.conn.close()
        rate = count / elapsed
        print(f"ledger {label}: 3 writers, {count} entries: {rate:,.0f} entries/s", flush=True)
        return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=60)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--ledger-appends", type=int, default=300, help="per writer")
    parser.add_argument(
        "--contention", type=int, default=200, help="agents at once in the contention trial"
    )
    parser.add_argument("--contention-seconds", type=float, default=30.0)
    parser.add_argument("--contention-workers", type=int, default=4)
    args = parser.parse_args()
    server_url = postgres.server_url()
    if server_url is None:
        raise SystemExit("no PostgreSQL at DOORSTEP_TEST_POSTGRES_URL or 127.0.0.1:5432")
    schemas = []

    def fresh() -> str:
        schema, url = postgres.create_schema(server_url)
        schemas.append(schema)
        return url

    try:
        sqlite_rate = push_run("SQLite, 1 app server", None, 1, args)
        pg_one = push_run("PostgreSQL, 1 app server", fresh(), 1, args)
        pg_three = push_run("PostgreSQL, 3 app servers", fresh(), 3, args)
        print(
            f"push ratios: PostgreSQL 1 server / SQLite {pg_one / sqlite_rate:.2f}; "
            f"PostgreSQL 3 servers / 1 server {pg_three / pg_one:.2f}"
        )
        if args.contention:
            sqlite_p50, sqlite_p99 = contention_run("SQLite", None, args)
            pg_p50, pg_p99 = contention_run("PostgreSQL", fresh(), args)
            print(
                f"contention ratios: PostgreSQL / SQLite p50 {pg_p50 / sqlite_p50:.2f}, "
                f"p99 {pg_p99 / sqlite_p99:.2f}"
            )
        ledger_sqlite = ledger_run("SQLite", None, args)
        ledger_pg = ledger_run("PostgreSQL", fresh(), args)
        print(f"ledger ratio: PostgreSQL / SQLite {ledger_pg / ledger_sqlite:.2f}")
    finally:
        for schema in schemas:
            postgres.drop_schema(server_url, schema)


if __name__ == "__main__":
    main()
