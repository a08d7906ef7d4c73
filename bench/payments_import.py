"""Payment import throughput, against plain sqlite3 inserts of the same rows in the same run.

Builds a scratch database with the migrations and C cases, writes N payments as JSON Lines
and as CSV, and times:

- `import_payments` on the JSON Lines (every row validated, case looked up, hashed, stored);
- the same on the CSV (other payment ids);
- a re-import of the JSON Lines (idempotent: every row `unchanged`);
- the baseline: `json.loads` of each line and one `executemany` of the same columns into a
  table shaped like `payments`, in the same database file.

    .venv/bin/python -m bench.payments_import [--rows 50000] [--cases 2000]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import scratch_dir
from server.runtime import Caller
from server.services.payments import import_payments
from server.storage.connection import open_db
from server.storage.migrations import migrate

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
FIELDS = ("payment_id", "case_external_id", "amount", "currency", "paid_at", "source")


def _seed_cases(db_path: Path, cases: int) -> None:
    stamp = NOW.isoformat()
    conn = sqlite3.connect(db_path)
    conn.executemany(
        "INSERT INTO borrowers (id, external_id, full_name, time_zone, created_at, updated_at) "
        "VALUES (?, ?, ?, 'Asia/Shanghai', ?, ?)",
        [(n, f"B-{n}", f"Borrower {n}", stamp, stamp) for n in range(1, cases + 1)],
    )
    conn.executemany(
        "INSERT INTO cases (id, external_id, borrower_id, product, overdue_amount, currency, "
        "days_past_due, content_hash, created_at, updated_at) "
        "VALUES (?, ?, ?, 'loan', '1000.00', 'CNY', 30, 'x', ?, ?)",
        [(n, f"C-{n}", n, stamp, stamp) for n in range(1, cases + 1)],
    )
    conn.commit()
    conn.close()


def _rows(prefix: str, rows: int, cases: int) -> list[dict[str, str]]:
    return [
        {
            "payment_id": f"{prefix}-{n}",
            "case_external_id": f"C-{n % cases + 1}",
            "amount": f"{n % 900 + 1}.{n % 100:02d}",
            "currency": "CNY",
            "paid_at": f"2026-11-{n % 20 + 1:02d}T10:{n % 60:02d}:00+08:00",
            "source": "bank_transfer",
        }
        for n in range(rows)
    ]


def _csv_lines(rows: list[dict[str, str]]) -> list[str]:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().splitlines(keepends=True)


def _timed(label: str, rows: int, run) -> float:
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    print(f"{label:<44} {rows:>8} rows {seconds:7.2f} s {rows / seconds:>10,.0f} rows/s")
    if isinstance(result, dict):
        counts = {k: result[k] for k in ("created", "unchanged", "rejected")}
        print(f"{'':<44} {counts}")
    return rows / seconds


def _plain_sqlite(db_path: Path, lines: list[str], cases: dict[str, int]) -> int:
    conn = sqlite3.connect(db_path)
    conn.execute(
        "CREATE TABLE plain_payments (id TEXT PRIMARY KEY, case_id INTEGER, amount TEXT, "
        "currency TEXT, paid_at TEXT, source TEXT)"
    )
    conn.execute("CREATE INDEX plain_payments_case ON plain_payments(case_id, paid_at)")
    values = []
    for line in lines:
        row = json.loads(line)
        values.append(
            (
                row["payment_id"],
                cases[row["case_external_id"]],
                row["amount"],
                row["currency"],
                row["paid_at"],
                row["source"],
            )
        )
    conn.executemany("INSERT INTO plain_payments VALUES (?, ?, ?, ?, ?, ?)", values)
    conn.commit()
    conn.close()
    return len(values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--cases", type=int, default=2_000)
    args = parser.parse_args()
    with scratch_dir() as workdir:
        db_path = workdir / "bench.db"
        db = open_db(str(db_path))
        migrate(db, NOW.isoformat())
        _seed_cases(db_path, args.cases)
        caller = Caller(
            principal=None, request_id="bench", endpoint="bench", address="local", now=NOW
        )
        jsonl = [json.dumps(r) for r in _rows("J", args.rows, args.cases)]
        csv_lines = _csv_lines(_rows("C", args.rows, args.cases))
        print(f"payments import, {args.rows} rows over {args.cases} cases")
        ours = _timed(
            "import_payments, JSON Lines",
            args.rows,
            lambda: import_payments(db, caller, jsonl, "jsonl", "bench"),
        )
        _timed(
            "import_payments, CSV",
            args.rows,
            lambda: import_payments(db, caller, csv_lines, "csv", "bench"),
        )
        _timed(
            "import_payments, JSON Lines again (no-op)",
            args.rows,
            lambda: import_payments(db, caller, jsonl, "jsonl", "bench"),
        )
        cases = {f"C-{n}": n for n in range(1, args.cases + 1)}
        plain = _timed(
            "plain sqlite3: json.loads + executemany",
            args.rows,
            lambda: _plain_sqlite(db_path, jsonl, cases),
        )
        print(f"import_payments runs at {ours / plain:.1%} of plain sqlite3 inserts")
        db.conn.close()


if __name__ == "__main__":
    main()
