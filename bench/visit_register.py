"""The visit register on a large store: what one page costs to read, build and render.

Builds a scratch database with --visits visits over --agents agents (five teams) and --days
days, a visit report with a GPS fix and a flag on each of --reported-percent of them, and a
badge confirmation before each report; then prints p50/p95 of register_page (service call,
no HTTP) for one day (a page of --limit visits), one agent over 30 days, one team for a day,
one case, and of rendering that day's page as CSV lines.

    .venv/bin/python -m bench.visit_register [--visits 200000] [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from server.domain.csv_cells import csv_lines
from server.runtime import Caller
from server.services import visit_register
from server.storage import migrations
from server.storage.connection import open_db, transaction
from sync.compliance import CompliancePolicy

NOW = "2026-11-24T02:00:00.000000Z"
LAST_DAY = date(2026, 11, 24)
FLAG = {"code": "location_mismatch", "message": "m", "details": {"distance_m": 812.5}}


def build(db, visits: int, agents: int, days: int, reported_percent: int) -> None:
    first = LAST_DAY - timedelta(days=days - 1)
    with transaction(db):
        for a in range(agents):
            db.execute(
                "INSERT INTO users (id, username, password_hash, role, display_name, created_at) "
                "VALUES (?, ?, 'x', 'agent', ?, ?)",
                [a + 10, f"agent{a}", f"Agent {a}", NOW],
            )
            db.execute(
                "INSERT INTO agents (user_id, badge_number, region, time_zone) "
                "VALUES (?, ?, ?, 'Asia/Shanghai')",
                [a + 10, f"B-{a}", f"team{a % 5}"],
            )
        cases = max(1, visits // 4)
        db.conn.executemany(
            "INSERT INTO borrowers (id, external_id, full_name, home_lat, home_lon, time_zone, "
            "created_at, updated_at) VALUES (?, ?, ?, 31.2, 121.4, 'Asia/Shanghai', ?, ?)",
            [(c, f"B{c}", f"Borrower {c}", NOW, NOW) for c in range(1, cases + 1)],
        )
        db.conn.executemany(
            "INSERT INTO cases (id, external_id, borrower_id, product, overdue_amount, currency, "
            "days_past_due, content_hash, created_at, updated_at) "
            "VALUES (?, ?, ?, 'p', '1', 'CNY', 1, 'h', ?, ?)",
            [(c, f"C{c}", c, NOW, NOW) for c in range(1, cases + 1)],
        )
        rows, records = [], []
        for n in range(visits):
            visit_id, agent = n + 1, n % agents + 10
            day = (first + timedelta(days=(n // agents) % days)).isoformat()
            rows.append((visit_id, n % cases + 1, agent, day))
            if n % 100 < reported_percent:
                report = {
                    "arrived_at": NOW,
                    "outcome": "not_home",
                    "location": {"lat": 31.21, "lon": 121.41, "accuracy_m": 10},
                }
                badge = {"confirmation_kind": "agent_credential", "badge_number": "B"}
                for kind, body, flags in (
                    ("id_confirmation", badge, []),
                    ("visit_report", report, [FLAG]),
                ):
                    records.append(
                        (
                            str(uuid.uuid4()),
                            kind,
                            agent,
                            visit_id,
                            n % cases + 1,
                            json.dumps({"flags": flags}),
                            json.dumps(body),
                        )
                    )
        db.conn.executemany(
            "INSERT INTO visits (id, case_id, agent_id, visit_date, purpose, status, "
            f"created_at, updated_at) VALUES (?, ?, ?, ?, 'home_visit', 'planned', '{NOW}', "
            f"'{NOW}')",
            rows,
        )
        db.conn.executemany(
            "INSERT INTO sync_records (id, kind, agent_id, device_id, visit_id, case_id, "
            "device_seq, recorded_at, received_at, digest, status, outcome, body, raw_digest) "
            f"VALUES (?, ?, ?, 'phone', ?, ?, 1, '{NOW}', '{NOW}', 'd', 'flagged', ?, ?, 'r')",
            records,
        )


def timed(label: str, runs: int, fn) -> None:
    samples, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    size = f"{len(result['items'])} lines" if isinstance(result, dict) else f"{result} bytes"
    print(f"{label:<36} p50 {statistics.median(samples):8.1f} ms  p95 {p95:8.1f} ms  {size}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--visits", type=int, default=200_000)
    parser.add_argument("--agents", type=int, default=80)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--reported-percent", type=int, default=70)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        db = open_db(str(Path(workdir) / "bench.db"))
        migrations.migrate(db, NOW)
        t0 = time.monotonic()
        build(db, args.visits, args.agents, args.days, args.reported_percent)
        print(f"{args.visits} visits built in {time.monotonic() - t0:.1f} s")
        rt = SimpleNamespace(compliance=CompliancePolicy())
        caller = Caller(None, "bench", "bench", "127.0.0.1", datetime(2026, 11, 24, 2, tzinfo=UTC))
        page = {"after": 0, "limit": args.limit}

        def register(**filters):
            return visit_register.register_page(db, rt, caller, {**page, **filters}, "json")

        timed("one day", args.runs, lambda: register(day=LAST_DAY))
        timed(
            "one agent, 30 days",
            args.runs,
            lambda: register(agent_id=10, since=LAST_DAY - timedelta(days=29), until=LAST_DAY),
        )
        timed("one team, one day", args.runs, lambda: register(team="team1", day=LAST_DAY))
        timed("one case", args.runs, lambda: register(case_id=7))
        lines = visit_register.csv_rows(register(day=LAST_DAY)["items"])
        timed(
            "one day as CSV lines",
            args.runs,
            lambda: sum(len(x) for x in csv_lines(visit_register.CSV_COLUMNS, lines)),
        )


if __name__ == "__main__":
    main()
