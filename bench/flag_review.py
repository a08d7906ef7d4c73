"""Flag review reads on a large store: the review list is derived from the flags in the
stored records (no row per item at push time), so this measures what that costs.

Builds a scratch database with --records field records (one in --flagged-every carries two
flags) over --agents agents and --days days, resolves some items, then prints p50/p95 of:
the first page of GET /flags (100 items), a page deep in the list, the list filtered by agent
and day, filtered by status=open, one item with history, review_states for 500 keys, and an
agent's compliance summary for 30 days. Service calls in process, no HTTP.

    .venv/bin/python -m bench.flag_review [--records 200000] [--runs 20]
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

from server.runtime import Caller
from server.services import flag_reviews
from server.storage import migrations
from server.storage.connection import open_db, transaction

NOW = "2026-11-24T02:00:00Z"
FLAGS = [
    {"code": "credential_not_shown_first", "message": "m", "details": {"contact_at": NOW}},
    {"code": "location_mismatch", "message": "m", "details": {"distance_m": 812.5}},
]


def build(db, records: int, agents: int, days: int, flagged_every: int) -> list[tuple]:
    start = date(2026, 11, 24) - timedelta(days=days - 1)
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
                [a + 10, f"B-{a}", f"region{a % 5}"],
            )
        db.execute(
            "INSERT INTO users (id, username, password_hash, role, display_name, created_at) "
            "VALUES (2, 'dispatcher', 'x', 'dispatcher', 'D', ?)",
            [NOW],
        )
        db.execute(
            "INSERT INTO borrowers (id, external_id, full_name, time_zone, created_at, "
            "updated_at) VALUES (1, 'B1', 'x', 'Asia/Shanghai', ?, ?)",
            [NOW, NOW],
        )
        db.execute(
            "INSERT INTO cases (id, external_id, borrower_id, product, overdue_amount, currency, "
            "days_past_due, content_hash, created_at, updated_at) "
            "VALUES (1, 'C1', 1, 'p', '1', 'CNY', 1, 'h', ?, ?)",
            [NOW, NOW],
        )
        visits, rows, keys = [], [], []
        for n in range(records):
            agent, day = n % agents + 10, (start + timedelta(days=n % days)).isoformat()
            visits.append((n + 1, agent, day))
            flags = FLAGS if n % flagged_every == 0 else []
            record_id = str(uuid.UUID(int=n))
            if flags:
                keys.extend((record_id, f["code"]) for f in flags)
            rows.append((record_id, agent, n + 1, NOW, NOW, json.dumps({"flags": flags}), n))
        db.conn.executemany(
            "INSERT INTO visits (id, case_id, agent_id, visit_date, purpose, status, "
            "created_at, updated_at) VALUES (?, 1, ?, ?, 'home_visit', 'completed', "
            f"'{NOW}', '{NOW}')",
            visits,
        )
        db.conn.executemany(
            "INSERT INTO sync_records (id, kind, agent_id, device_id, visit_id, case_id, "
            "device_seq, recorded_at, received_at, digest, status, outcome, body, raw_digest) "
            "VALUES (?, 'visit_report', ?, 'phone', ?, 1, 1, ?, ?, 'd', 'flagged', ?, '{}', ?)",
            rows,
        )
    return keys


def timed(label: str, runs: int, fn) -> None:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    size = len(result["items"]) if isinstance(result, dict) and "items" in result else ""
    print(f"{label:<44} p50 {statistics.median(samples):8.1f} ms  p95 {p95:8.1f} ms  {size}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--agents", type=int, default=80)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--flagged-every", type=int, default=4)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        db = open_db(str(Path(workdir) / "bench.db"))
        migrations.migrate(db, NOW)
        t0 = time.monotonic()
        keys = build(db, args.records, args.agents, args.days, args.flagged_every)
        print(
            f"{args.records} records, {len(keys)} review items, built in "
            f"{time.monotonic() - t0:.1f} s"
        )
        caller = Caller(None, "bench", "bench", "127.0.0.1", datetime(2026, 11, 24, 2, tzinfo=UTC))
        for record_id, code in keys[: len(keys) // 10]:
            flag_reviews.resolve(db, caller, record_id, code, 0, "breach", "bench")
        deep = flag_reviews.list_flags(db, {}, 0, 500)["next_after"] or 0
        timed("list, first page", args.runs, lambda: flag_reviews.list_flags(db, {}, 0, 100))
        timed(
            "list, page after 500 items",
            args.runs,
            lambda: flag_reviews.list_flags(db, {}, deep, 100),
        )
        timed(
            "list, one agent",
            args.runs,
            lambda: flag_reviews.list_flags(db, {"agent_id": 10}, 0, 100),
        )
        timed(
            "list, one day",
            args.runs,
            lambda: flag_reviews.list_flags(db, {"day": "2026-09-26"}, 0, 100),
        )
        timed(
            "list, status=open",
            args.runs,
            lambda: flag_reviews.list_flags(db, {"status": "open"}, 0, 100),
        )
        timed(
            "one item with history",
            args.runs,
            lambda: flag_reviews.flag_item(db, keys[0][0], keys[0][1]),
        )
        timed(
            "review_states, 500 keys", args.runs, lambda: flag_reviews.review_states(db, keys[:500])
        )
        timed(
            "compliance summary, 30 days",
            args.runs,
            lambda: flag_reviews.compliance_summary(
                db, caller, 10, date(2026, 10, 26), date(2026, 11, 24)
            ),
        )


if __name__ == "__main__":
    main()
