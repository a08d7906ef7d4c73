"""Per-test store setup: a store migrated from scratch against a copy of a migrated template.

What a test's `store_target` costs before its app starts, and what the app's start then
spends in `migrate` (17 migrations on a fresh store, a check of 17 versions on a copy):

- SQLite: a new file migrated, against `shutil.copyfile` of a template file;
- PostgreSQL: `CREATE SCHEMA` and the migrations, against `CREATE DATABASE … TEMPLATE`;
  the drop afterwards is timed apart, one at a time and as the tests drop copies (several
  at once on background threads).

    .venv/bin/python -m bench.store_setup [--rounds 20] [--max-seconds 60]

Needs PostgreSQL at DOORSTEP_TEST_POSTGRES_URL or 127.0.0.1:5432 for its half; every
database and schema it makes is dropped before it ends.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import scratch_dir
from server.storage.connection import open_db
from server.storage.migrations import migrate
from tests import postgres

NOW = "2026-11-24T02:00:00Z"


def _migrate(target: str) -> None:
    db = open_db(target)
    try:
        migrate(db, NOW)
    finally:
        db.conn.close()


def _timed(rounds: int, max_seconds: float, step: Callable[[int], None]) -> list[float]:
    """Seconds per call of step(i), for at most `rounds` calls and max_seconds."""
    deadline = time.monotonic() + max_seconds
    times: list[float] = []
    for i in range(rounds):
        if times and time.monotonic() > deadline:
            break
        start = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - start)
    return times


def _line(label: str, times: list[float], baseline: list[float] | None = None) -> str:
    median = statistics.median(times)
    ratio = f"  {statistics.median(baseline) / median:6.1f}x faster" if baseline else ""
    return f"  {label:<48} {median * 1000:9.1f} ms  (median of {len(times)}){ratio}"


def sqlite_figures(folder: Path, rounds: int, max_seconds: float) -> list[str]:
    template = folder / "template.db"
    _migrate(str(template))

    def fresh(i: int) -> None:
        _migrate(str(folder / f"fresh-{i}.db"))

    def copy(i: int) -> None:
        shutil.copyfile(template, folder / f"copy-{i}.db")

    def copy_then_check(i: int) -> None:
        target = folder / f"checked-{i}.db"
        shutil.copyfile(template, target)
        _migrate(str(target))

    old = _timed(rounds, max_seconds, fresh)
    return [
        "SQLite",
        _line("old: new file + 17 migrations", old),
        _line("template: copyfile", _timed(rounds, max_seconds, copy), old),
        _line(
            "template: copyfile + app's migrate check",
            _timed(rounds, max_seconds, copy_then_check),
            old,
        ),
    ]


def postgres_figures(server: str, rounds: int, max_seconds: float) -> list[str]:
    template = postgres.create_template(server, "bench", NOW)
    schemas: list[str] = []
    databases: list[str] = []

    def fresh(_: int) -> None:
        schema, url = postgres.create_schema(server)
        schemas.append(schema)
        _migrate(url)

    def copy(_: int) -> None:
        name, url = postgres.clone_database(server, template)
        databases.append(name)
        _migrate(url)

    try:
        if template is None:
            return ["PostgreSQL: this role may not create databases; the tests use schemas"]
        old = _timed(rounds, max_seconds, fresh)
        new = _timed(rounds, max_seconds, copy)
        drop_schema = _timed(
            len(schemas), max_seconds, lambda i: postgres.drop_schema(server, schemas[i])
        )
        half = len(databases) // 2
        drop_database = _timed(
            half, max_seconds, lambda i: postgres.drop_database(server, databases[i])
        )
        start = time.perf_counter()
        dropper = postgres.Dropper(server)  # as the tests drop: DROP_THREADS at once
        for name in databases[half:]:
            dropper.drop(name)
        dropper.close()
        drop_together = [(time.perf_counter() - start) / max(1, len(databases) - half)]
        return [
            "PostgreSQL",
            _line("old: CREATE SCHEMA + 17 migrations", old),
            _line("template: CREATE DATABASE … TEMPLATE + check", new, old),
            _line("old teardown: DROP SCHEMA … CASCADE", drop_schema),
            _line("template teardown: DROP DATABASE, one at a time", drop_database),
            _line(f"  … {postgres.DROP_THREADS} at once (per database, background)", drop_together),
        ]
    finally:
        for schema in schemas:
            postgres.drop_schema(server, schema)
        for name in databases:
            postgres.drop_database(server, name)
        if template is not None:
            postgres.drop_database(server, template)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="stores per way (at most)")
    parser.add_argument("--max-seconds", type=float, default=60, help="per way (at most)")
    args = parser.parse_args()
    print(f"per-test store setup, {args.rounds} rounds per way at most")
    with scratch_dir() as folder:
        for line in sqlite_figures(Path(folder), args.rounds, args.max_seconds):
            print(line)
    server = postgres.server_url()
    if server is None:
        print("PostgreSQL: no server answered; half skipped")
        return
    for line in postgres_figures(server, args.rounds, args.max_seconds):
        print(line)


if __name__ == "__main__":
    main()
