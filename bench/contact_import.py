"""Contact log import: rows per second of a dialer export through the import service, and
the same rows through plain `sqlite3` inserts in the same run, for scale.

The demo builds the cases; the bench writes N dialer rows (calls and SMS spread over the
cases and a month, a third of them with a dialer call id), imports them once (every row
validated, matched against the log, checked against the channel rules, inserted with its
source), imports them again (every row recognised, nothing inserted), then inserts the same
rows with `executemany` into a bare table of the same columns. Prints the three rates, and
for the imports the process's CPU time too: on a shared machine, rows per CPU-second moves
far less than rows per wall-clock second when other work competes for the cores.

    .venv/bin/python -m bench.contact_import [--rows 100000] [--borrowers 2000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_env, flask, scratch_dir

OUTCOMES = {
    "phone_call": ("no_answer", "voicemail", "reached", "busy"),
    "sms": ("sent", "delivered"),
}


def dialer_rows(case_ids: list[str], n: int) -> list[dict]:
    rng = random.Random(11)
    start = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    rows = []
    for i in range(n):
        channel = "phone_call" if rng.random() < 0.7 else "sms"
        at = start + timedelta(seconds=i * 26)
        row = {
            "case_external_id": rng.choice(case_ids),
            "channel": channel,
            "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "outcome": rng.choice(OUTCOMES[channel]),
            "agent": f"seat-{rng.randrange(40)}",
            "duration_s": rng.randrange(0, 300),
        }
        if i % 3 == 0:
            row["external_ref"] = f"CALL-{i:08d}"
        rows.append(row)
    return rows


def plain_inserts(rows: list[dict]) -> float:
    """Seconds to insert the rows into a bare table with sqlite3, in one transaction."""
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE contacts (id INTEGER PRIMARY KEY, case_external_id TEXT, channel TEXT, "
        "occurred_at TEXT, outcome TEXT, agent TEXT, duration_s INTEGER, external_ref TEXT)"
    )
    started = time.perf_counter()
    with conn:
        conn.executemany(
            "INSERT INTO contacts (case_external_id, channel, occurred_at, outcome, agent, "
            "duration_s, external_ref) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r["case_external_id"],
                    r["channel"],
                    r["occurred_at"],
                    r["outcome"],
                    r["agent"],
                    r["duration_s"],
                    r.get("external_ref"),
                )
                for r in rows
            ],
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--borrowers", type=int, default=2000)
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of the first import"
    )
    args = parser.parse_args()
    with scratch_dir() as workdir:
        env = bench_env(workdir)
        flask(env, "demo", "--borrowers", str(args.borrowers), "--agents", "4")
        os.environ.update(env)
        from server import create_app
        from server.cli_context import cli_caller, open_database, runtime
        from server.services.contact_import import import_contacts

        app = create_app()
        store = sqlite3.connect(workdir / "bench.db")
        case_ids = [r[0] for r in store.execute("SELECT external_id FROM cases")]
        rows = dialer_rows(case_ids, args.rows)
        lines = [json.dumps(r) for r in rows]
        print(f"{len(rows)} rows over {len(case_ids)} cases")
        with app.app_context():
            for label in ("first import", "re-import"):
                profiler = cProfile.Profile() if args.profile and label == "first import" else None
                started, cpu = time.perf_counter(), time.process_time()
                if profiler:
                    profiler.enable()
                report = import_contacts(
                    open_database(), runtime(), cli_caller("bench"), lines, "jsonl", "bench"
                )
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu
                if profiler:
                    profiler.disable()
                    pstats.Stats(profiler).sort_stats(
                        os.environ.get("BENCH_SORT", "cumulative")
                    ).print_stats(40)
                print(
                    f"{label:>13}: {elapsed:6.2f} s, {len(rows) / elapsed:9,.0f} rows/s "
                    f"(created {report['created']}, flagged {report['flagged']}, "
                    f"already logged {report['already_logged']}, rejected {report['rejected']}); "
                    f"CPU {cpu:.2f} s = {len(rows) / cpu:,.0f} rows per CPU-second"
                )
        plain = plain_inserts(rows)
        print(f"{'plain sqlite3':>13}: {plain:6.2f} s, {len(rows) / plain:9,.0f} rows/s")


if __name__ == "__main__":
    main()
