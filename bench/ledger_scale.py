"""The privacy officer's audit at scale: N exposure-ledger entries (default 10 million) over
a year, 100,000 borrowers, 100 agents with 25 visits a day. Prints:

- whole-chain verification (GET /audit/verify's service), entries/s;
- one borrower's disclosure report: p50/p95 over random borrowers;
- the anomaly scan for one day;
- the retention purge of the month that fell out of the 12-month window (dry run, then real).

    .venv/bin/python -m bench.ledger_scale [--entries 10000000] [--borrowers 100000]
        [--agents 100] [--days 365] [--reports 200] [--keep PATH]

The generator writes the real chain (the domain's own hash) with executemany in large
transactions into a database made by the app's migrations; the ledger's indexes are dropped
during the load and rebuilt after it, as a bulk import would.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import scratch_dir, summary
from server import create_app
from server.clock import to_iso
from server.domain.ledger import GENESIS_HASH, values_hash
from server.storage.connection import open_db

END = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # midnight UTC: the generated year ends here
VISITS_PER_AGENT = 25
CARD_FIELDS = json.dumps(
    ["case_summary", "display_name", "home_address", "home_geo", "phones", "visit_window"]
)
PLAN_FIELDS = json.dumps(["case_flags", "case_summary", "display_name", "home_address"])
LEDGER_INSERT = "INSERT INTO exposure_ledger VALUES (" + ", ".join("?" * 15) + ")"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def load_people(db, borrowers: int, agents: int, rng: random.Random) -> None:
    now = to_iso(END - timedelta(days=400))
    users = [(i, f"agent{i:03d}", "x", "agent", f"Agent {i}", 1, now) for i in range(1, agents + 1)]
    staff = [(agents + i, f"dispatcher{i}", "x", "dispatcher", f"D {i}", 1, now) for i in (1, 2)]
    db.conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?)", users + staff)
    db.conn.executemany(
        "INSERT INTO agents (user_id, badge_number, region, time_zone) "
        "VALUES (?, ?, 'east', 'Asia/Shanghai')",
        [(i, f"B-{i:04d}") for i in range(1, agents + 1)],
    )
    db.conn.executemany(
        "INSERT INTO devices (id, user_id, registered_at) VALUES (?, ?, ?)",
        [(f"phone-{i:03d}", i, now) for i in range(1, agents + 1)],
    )
    db.conn.executemany(
        "INSERT INTO borrowers (id, external_id, full_name, phones, home_address, time_zone, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'Asia/Shanghai', ?, ?)",
        (
            (i, f"B{i:07d}", f"Borrower {i}", f'["138{i:08d}"]', f"{i} Road", now, now)
            for i in range(1, borrowers + 1)
        ),
    )
    db.conn.executemany(
        "INSERT INTO cases (id, external_id, borrower_id, product, overdue_amount, currency, "
        "days_past_due, content_hash, created_at, updated_at) "
        "VALUES (?, ?, ?, 'loan', '1000.00', 'CNY', ?, 'h', ?, ?)",
        ((i, f"C{i:07d}", i, rng.randint(1, 180), now, now) for i in range(1, borrowers + 1)),
    )


def day_plan(day: int, agents: int, borrowers: int, first_visit: int, rng: random.Random):
    """Each agent's 25 visits of the day: (visit id, case/borrower id)."""
    plan, visit_id = {}, first_visit
    for agent in range(1, agents + 1):
        plan[agent] = [(visit_id + k, rng.randint(1, borrowers)) for k in range(VISITS_PER_AGENT)]
        visit_id += VISITS_PER_AGENT
    return plan, visit_id


def day_rows(day_start: datetime, plan: dict, dispatcher: int, rng: random.Random):
    """visits, visit_history, device_cards and sync_records rows for one day's plan."""
    date = (day_start + timedelta(hours=8)).date().isoformat()  # the local (UTC+8) day
    planned = to_iso(day_start - timedelta(hours=6))
    delivered = to_iso(day_start + timedelta(minutes=30))
    ordered = to_iso(day_start + timedelta(hours=22))
    confirmed = to_iso(day_start + timedelta(hours=22, minutes=10))
    visits, history, cards, records = [], [], [], []
    for agent, stops in plan.items():
        device = f"phone-{agent:03d}"
        for order, (visit_id, case_id) in enumerate(stops):
            visits.append((visit_id, case_id, agent, date, order, planned, dispatcher))
            history.append((visit_id, agent, date, planned, dispatcher))
            late = rng.random() < 0.002  # a few devices never confirm their purge
            cards.append(
                (
                    device,
                    visit_id,
                    case_id,
                    case_id,
                    delivered,
                    ordered,
                    None if late else confirmed,
                )
            )
            if rng.random() < 0.9:
                at = to_iso(day_start + timedelta(hours=2 + order * 0.4))
                records.append((str(uuid.uuid4()), agent, device, visit_id, case_id, order, at, at))
    return visits, history, cards, records


def write_day_rows(db, visits, history, cards, records) -> None:
    db.conn.executemany(
        "INSERT INTO visits (id, case_id, agent_id, visit_date, route_order, purpose, status, "
        "created_at, updated_at, created_by) VALUES (?, ?, ?, ?, ?, 'collection', 'completed', "
        "?6, ?6, ?7)",
        visits,
    )
    db.conn.executemany(
        "INSERT INTO visit_history (visit_id, version, agent_id, visit_date, status, changed_at, "
        "changed_by) VALUES (?, 1, ?, ?, 'planned', ?, ?)",
        history,
    )
    db.conn.executemany(
        "INSERT INTO device_cards (device_id, visit_id, borrower_id, case_id, card_digest, "
        "delivered_pull, delivered_at, expires_at, purge_reason, purge_ordered_at, "
        "purge_confirmed_at) VALUES (?1, ?2, ?3, ?4, 'd', 1, ?5, ?6, 'expired', ?6, ?7)",
        cards,
    )
    db.conn.executemany(
        "INSERT INTO sync_records (id, kind, agent_id, device_id, visit_id, case_id, device_seq, "
        "recorded_at, received_at, digest, status, outcome, body) VALUES (?, 'visit_report', "
        "?, ?, ?, ?, ?, ?, ?, 'd', 'stored', '{}', '{}')",
        records,
    )


def day_entries(
    day_start: datetime, plan: dict, quota: int, dispatchers: list[int], rng: random.Random
) -> Iterator[tuple]:
    """The day's ledger entries in time order, without seq and hashes: agents' day views and
    pulls (one entry per borrower on the card list) and dispatchers' lists."""
    requests = []
    agents = list(plan)
    made = 0
    while made < quota:
        # Local 08:00-20:00 in Shanghai is 00:00-12:00 UTC.
        at = day_start + timedelta(seconds=rng.uniform(0, 12 * 3600))
        if rng.random() < 0.95:
            agent = rng.choice(agents)
            size = min(VISITS_PER_AGENT, quota - made)
            requests.append((at, "agent", agent, plan[agent][:size]))
        else:
            stops = plan[rng.choice(agents)]
            size = min(VISITS_PER_AGENT, quota - made)
            requests.append((at, "dispatcher", rng.choice(dispatchers), stops[:size]))
        made += size
    requests.sort(key=lambda r: r[0])
    for at, role, user, stops in requests:
        when, request_id = to_iso(at), uuid.uuid4().hex
        if role == "agent":
            device, endpoint = f"phone-{user:03d}", "GET /api/v1/me/day"
            for visit_id, case_id in stops:
                yield (when, user, role, device, case_id, case_id, visit_id, CARD_FIELDS,
                       "collection", endpoint, request_id, "served")  # fmt: skip
        else:
            for visit_id, case_id in stops:
                yield (when, user, role, None, case_id, case_id, visit_id, PLAN_FIELDS,
                       "planning", "GET /api/v1/visits", request_id, "served")  # fmt: skip


def generate(db, args, rng: random.Random) -> None:
    ledger_indexes = [
        sql
        for (sql,) in db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'exposure_ledger' "
            "AND sql IS NOT NULL"
        )
    ]
    for sql in ledger_indexes:
        db.execute("DROP INDEX " + sql.split()[2])
    db.execute("BEGIN")
    load_people(db, args.borrowers, args.agents, rng)
    db.execute("COMMIT")
    dispatchers = [args.agents + 1, args.agents + 2]
    per_day, extra = divmod(args.entries, args.days)
    seq, prev, visit_id = 0, GENESIS_HASH, 1
    started = time.monotonic()
    for day in range(args.days):
        day_start = END - timedelta(days=args.days - day)
        plan, visit_id = day_plan(day, args.agents, args.borrowers, visit_id, rng)
        db.execute("BEGIN")
        write_day_rows(db, *day_rows(day_start, plan, dispatchers[0], rng))
        rows = []
        quota = per_day + (extra if day == args.days - 1 else 0)
        for content in day_entries(day_start, plan, quota, dispatchers, rng):
            seq += 1
            values = (seq, *content, prev)
            prev = values_hash(values)
            rows.append((*values, prev))
        db.conn.executemany(LEDGER_INSERT, rows)
        db.execute("COMMIT")
        if day % 30 == 29 or day == args.days - 1:
            rate = seq / (time.monotonic() - started)
            print(
                f"  generated {seq:,} entries ({day + 1} days), {rate:,.0f} entries/s", flush=True
            )
    started = time.monotonic()
    for sql in ledger_indexes:
        db.execute(sql)
    db.execute("ANALYZE")
    elapsed = time.monotonic() - started
    print(f"  rebuilt the ledger's {len(ledger_indexes)} indexes in {elapsed:.1f} s")


def measure_verification(db, rt, entries: int) -> None:
    from server.domain.ledger import verify_chain
    from server.services import audit
    from server.storage import ledger as ledger_rows

    for attempt in ("first", "second"):
        started, cpu = time.perf_counter(), time.process_time()
        report = audit.verify(db, rt)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert report["intact"] and report["entries_checked"] == entries, report
        print(
            f"whole-chain verification ({attempt} run): {entries:,} entries in {elapsed:.1f} s = "
            f"{entries / elapsed:,.0f} entries/s ({entries / cpu:,.0f} entries per CPU-second)"
        )
    sample = min(entries, 500_000)
    started = time.perf_counter()
    verify_chain(ledger_rows.iter_entries(db, 0, sample))
    elapsed = time.perf_counter() - started
    print(
        f"  (for comparison, the reference path -- dict rows and json.dumps per entry -- "
        f"{sample / elapsed:,.0f} entries/s on the first {sample:,})"
    )


def measure_disclosure(db, rt, borrowers: int, samples: int, rng: random.Random) -> None:
    try:
        from server.services.audit_reports import borrower_disclosures
    except ImportError:
        borrower_disclosures = None
    latencies, sizes = [], []
    for borrower_id in rng.sample(range(1, borrowers + 1), samples):
        started = time.perf_counter()
        if borrower_disclosures:
            report = borrower_disclosures(db, rt, borrower_id, {"after": 0, "limit": 1000})
            sizes.append(len(report["items"]))
        else:
            rows = db.execute(
                "SELECT * FROM exposure_ledger WHERE borrower_id = ? ORDER BY seq", [borrower_id]
            ).fetchall()
            sizes.append(len(rows))
        latencies.append((time.perf_counter() - started) * 1000)
    how = (
        "server.services.audit_reports.borrower_disclosures"
        if borrower_disclosures
        else "the indexed query (audit_reports not importable)"
    )
    print(
        f"one borrower's disclosure report ({how}, {samples} random borrowers, "
        f"{sum(sizes) / len(sizes):.0f} entries each on average): {summary(latencies)}"
    )


def measure_anomalies(db, rt) -> None:
    try:
        from server.services.anomalies import scan_anomalies
    except ImportError:
        print("anomaly scan: skipped (server.services.anomalies is not importable)")
        return
    from schemas.audit_reports import ANOMALY_KINDS

    since = END - timedelta(days=1)
    started = time.perf_counter()
    found = scan_anomalies(db, rt, since, END, None)
    elapsed = time.perf_counter() - started
    kinds: dict[str, int] = {}
    for anomaly in found:
        kinds[anomaly["kind"]] = kinds.get(anomaly["kind"], 0) + 1
    print(f"anomaly scan for one day ({since:%Y-%m-%d}): {elapsed:.2f} s, found {kinds or 'none'}")
    for kind in ANOMALY_KINDS:
        started = time.perf_counter()
        scan_anomalies(db, rt, since, END, [kind])
        print(f"  {kind}: {time.perf_counter() - started:.2f} s")


def measure_purge(db, rt, days_later: int) -> None:
    from server.runtime import Caller
    from server.services import audit, retention

    caller = Caller(None, "bench", "bench purge", "local", END + timedelta(days=days_later))
    for dry in (True, False):
        started = time.perf_counter()
        report = retention.purge(db, rt, caller, dry_run=dry)
        elapsed = time.perf_counter() - started
        counts = ", ".join(f"{k['kind']} {k['count']:,}" for k in report["kinds"])
        print(
            f"retention purge {days_later} days after the year ({'dry run' if dry else 'real'}): "
            f"{elapsed:.1f} s ({counts})"
        )
    started = time.perf_counter()
    report = audit.verify(db, rt)
    print(
        f"  verification from the new anchor: intact={report['intact']}, "
        f"{report['entries_checked']:,} entries in {time.perf_counter() - started:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--borrowers", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--reports", type=int, default=200, help="disclosure reports to time")
    parser.add_argument("--purge-days", type=int, default=30, help="0: skip the purge")
    parser.add_argument(
        "--keep", type=Path, help="write the database here and keep it; if it exists, measure it"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print("$ .venv/bin/python -m bench.ledger_scale " + " ".join(sys.argv[1:]))
    rng = random.Random(args.seed)
    with scratch_dir() as workdir:
        path = args.keep or workdir / "ledger.db"
        fresh = not path.exists()
        app = create_app({"DATABASE": str(path), "CLOCK": Clock(END)})
        rt = app.extensions["doorstep"]
        db = open_db(str(path))
        if fresh:
            db.execute("PRAGMA synchronous = OFF")
            db.execute("PRAGMA cache_size = -1000000")
            started = time.monotonic()
            generate(db, args, rng)
            size, elapsed = path.stat().st_size / 2**30, time.monotonic() - started
            print(
                f"generated {args.entries:,} entries, {args.borrowers:,} borrowers, "
                f"{args.agents} agents in {elapsed:.0f} s; database {size:.1f} GiB"
            )
        else:
            args.borrowers = db.execute("SELECT count(*) FROM borrowers").fetchone()[0]
            print(f"measuring the existing database {path}")
        entries = db.execute("SELECT count(*) FROM exposure_ledger").fetchone()[0]
        db.execute("PRAGMA synchronous = FULL")
        measure_verification(db, rt, entries)
        measure_disclosure(db, rt, args.borrowers, args.reports, rng)
        measure_anomalies(db, rt)
        if args.purge_days:
            measure_purge(db, rt, args.purge_days)
        db.conn.close()


if __name__ == "__main__":
    main()
