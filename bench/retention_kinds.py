"""What retention of attachments and notes costs: the blob-reference trigger on every stored
record, and the purge's plan queries on a large store.

Builds a scratch database with --records visit reports over --cases cases, each report with
two attachment hashes and notes (the worst case: a report without attachments skips the
trigger's body), timing the inserts with the reference trigger and again without it (same
rows, a second scratch database with the trigger dropped). Then times, on the first: the
blobs that go with a tenth of the cases' records, the unreferenced blobs due, and the notes
count for a tenth of the borrowers. Storage calls in process, no HTTP.

    .venv/bin/python -m bench.retention_kinds [--records 100000] [--cases 5000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from server.domain.retention import REDACTED_NOTE
from server.domain.retention_coverage import NOTE_COLUMNS, RECORD_NOTE_KEYS
from server.storage import migrations
from server.storage import retention_kinds as retention_kind_rows
from server.storage.connection import open_db, transaction

NOW = "2026-11-24T02:00:00.000000Z"


def _world(db, cases: int) -> None:
    with transaction(db):
        db.execute(
            "INSERT INTO users (id, username, password_hash, role, display_name, created_at) "
            "VALUES (1, 'a', 'x', 'agent', 'A', ?)",
            [NOW],
        )
        for n in range(1, cases + 1):
            db.execute(
                "INSERT INTO borrowers (id, external_id, full_name, time_zone, created_at, "
                "updated_at) VALUES (?, ?, 'B', 'Asia/Shanghai', ?, ?)",
                [n, f"B-{n}", NOW, NOW],
            )
            db.execute(
                "INSERT INTO cases (id, external_id, borrower_id, product, overdue_amount, "
                "currency, days_past_due, status, closed_at, content_hash, created_at, "
                "updated_at) VALUES (?, ?, ?, 'p', '1', 'CNY', 1, 'closed_paid', ?, 'h', ?, ?)",
                [n, f"C-{n}", n, NOW, NOW, NOW],
            )


def _insert_records(db, records: int, cases: int) -> float:
    rows = [
        {
            "id": f"r{i}",
            "kind": "visit_report",
            "agent_id": 1,
            "device_id": "phone",
            "visit_id": i,
            "case_id": i % cases + 1,
            "device_seq": i,
            "recorded_at": NOW,
            "received_at": NOW,
            "digest": "d" * 64,
            "status": "stored",
            "outcome": "{}",
            "body": json.dumps(
                {
                    "outcome": "not_home",
                    "notes": f"note {i}",
                    "attachments": [f"{i:064x}", f"{i + records:064x}"],
                }
            ),
        }
        for i in range(records)
    ]
    started = time.perf_counter()
    with transaction(db):
        db.conn.executemany(
            "INSERT INTO sync_records (id, kind, agent_id, device_id, visit_id, case_id, "
            "device_seq, recorded_at, received_at, digest, status, outcome, body) VALUES "
            "(:id, :kind, :agent_id, :device_id, :visit_id, :case_id, :device_seq, "
            ":recorded_at, :received_at, :digest, :status, :outcome, :body)",
            rows,
        )
    return time.perf_counter() - started


def _timed(label: str, call) -> None:
    started = time.perf_counter()
    result = call()
    size = len(result[0]) if isinstance(result, tuple) else len(result)
    print(f"{label}: {(time.perf_counter() - started) * 1000:.1f} ms ({size} items)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=5_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        timings = {}
        for name, drop in (("with trigger", False), ("without trigger", True)):
            db = open_db(str(Path(scratch) / f"{name}.db"))
            migrations.migrate(db, NOW)
            if drop:
                db.execute("DROP TRIGGER sync_records_reference_attachments")
            _world(db, args.cases)
            timings[name] = _insert_records(db, args.records, args.cases)
            if not drop:
                kept = db
        for name, seconds in timings.items():
            per = seconds / args.records * 1e6
            print(f"insert {args.records} records {name}: {seconds:.2f} s ({per:.1f} µs each)")
        tenth = list(range(1, args.cases // 10 + 1))
        _timed(
            "blobs going with a tenth of the cases",
            lambda: retention_kind_rows.blobs_of_cases(kept, tenth),
        )
        _timed("unreferenced blobs due", lambda: retention_kind_rows.unreferenced_blobs(kept, NOW))
        columns = tuple((n.table, n.column, n.owner) for n in NOTE_COLUMNS)
        _timed(
            "notes of a tenth of the borrowers",
            lambda: retention_kind_rows.count_notes(
                kept, tenth, columns, RECORD_NOTE_KEYS, [], REDACTED_NOTE
            ),
        )


if __name__ == "__main__":
    main()
