"""The PostgreSQL half of the test run: where the server is, and a fresh store per test.

The API, sync, audit and system tests run once on SQLite and once on PostgreSQL: at
DOORSTEP_TEST_POSTGRES_URL when it is set, else at the local server (127.0.0.1:5432, trust
auth, database `test`) when one answers. With no server the PostgreSQL half is skipped and
the run says so loudly; under CI=true that is a failure.

Each PostgreSQL test gets a database of its own, copied from a migrated template database
that each test process builds once (`CREATE DATABASE … TEMPLATE`, a file copy inside the
server, instead of every migration per test). Where the role may not create databases, each
test gets a fresh schema in the server's database instead and the app migrates it.

Every name carries the hex Unix time of its creation (`t_<time>_<random>` for a test's
database or schema, `tmpl_<time>_<worker>_<random>` for a template), so a later run can
drop what a killed run left behind without touching a run still in progress.
"""

from __future__ import annotations

import functools
import os
import queue
import re
import threading
import time
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

LOCAL_CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)
# A database or schema of ours older than this, with nobody connected, was left by a run
# that died before its clean-up.
STALE_AFTER_S = 3600
_OURS = re.compile(r"^(?:t|tmpl)_([0-9a-f]{8})_[a-z0-9_]+$")
# Test databases waiting to be dropped: past this many, a test's teardown waits for a drop.
# A DROP DATABASE waits for a checkpoint (0.05-2 s on a busy server), longer than many
# tests take: the backlog lets the drops catch up over the run (~10 MB of disk each), and
# DROP_THREADS drop at once.
DROP_BACKLOG = 64
DROP_THREADS = 4


@functools.cache
def server_url() -> str | None:
    """The PostgreSQL server the tests use, or None when none answers."""
    import psycopg

    given = os.environ.get("DOORSTEP_TEST_POSTGRES_URL", "").strip()
    for url in (given,) if given else LOCAL_CANDIDATES:
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return url
        except psycopg.Error:
            continue
    return None


def _stamped(prefix: str, *parts: str) -> str:
    """A name of ours: prefix, the hex creation time, the parts, a random tail."""
    return "_".join((prefix, f"{int(time.time()):08x}", *parts, uuid.uuid4().hex[:12]))


def database_url(url: str, database: str) -> str:
    """The server URL pointed at another database (its query options kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def create_schema(url: str) -> tuple[str, str]:
    """A new empty schema; returns (its name, a URL whose connections use it)."""
    import psycopg

    schema = _stamped("t")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in url else "?"
    return schema, f"{url}{joiner}options={quote(f'-csearch_path={schema}')}"


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def create_template(url: str, worker: str, now_iso: str) -> str | None:
    """A new database migrated to the latest version, named for this test process; None
    when the role may not create databases."""
    import psycopg

    from server.storage.connection import open_db
    from server.storage.migrations import migrate

    name = _stamped("tmpl", re.sub(r"[^a-z0-9]", "", worker.lower()) or "main")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.errors.InsufficientPrivilege:
        return None
    db = open_db(database_url(url, name))
    try:
        migrate(db, now_iso)
    finally:
        db.conn.close()
    return name


def clone_database(url: str, template: str) -> tuple[str, str]:
    """A new database copied from template; returns (its name, its URL)."""
    import psycopg

    name = _stamped("t")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    return name, database_url(url, name)


def drop_database(url: str, name: str) -> None:
    """Drop a database of ours, disconnecting whoever is still connected to it."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Dropper:
    """Drops test databases on threads of their own, so a test's teardown does not wait for
    the server; at most DROP_BACKLOG wait at once, and close() drops the rest.

    Each DROP DATABASE waits for a checkpoint; drops running at once share one, so a few
    threads drop several databases in the time of one."""

    def __init__(self, url: str, threads: int = DROP_THREADS) -> None:
        self.url = url
        self.failures: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=DROP_BACKLOG)
        self._threads = [
            threading.Thread(target=self._run, name=f"drop-test-databases-{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def drop(self, name: str) -> None:
        self._queue.put(name)

    def close(self) -> None:
        """Wait until every database handed over is dropped."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        while (name := self._queue.get()) is not None:
            try:
                drop_database(self.url, name)
            except Exception as error:  # any failure: left for the next run's remove_leftovers
                self.failures.append(f"{name}: {error}")


def remove_leftovers(url: str, now: float | None = None) -> list[str]:
    """Drop the test databases, templates and schemas of ours that are older than
    STALE_AFTER_S and that nobody is connected to; returns their names.

    A run in progress keeps its own: they are younger, or in use (a template is in use
    while its run lasts only by name, so templates count from their creation time alone,
    and STALE_AFTER_S is far longer than any run)."""
    import psycopg

    now = time.time() if now is None else now

    def stale(name: str) -> bool:
        match = _OURS.match(name)
        return bool(match) and now - int(match[1], 16) > STALE_AFTER_S

    removed = []
    with psycopg.connect(url, autocommit=True) as conn:
        in_use = {row[0] for row in conn.execute("SELECT datname FROM pg_stat_activity")}
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database")]
        for name in names:
            if not stale(name) or name in in_use:
                continue
            try:
                conn.execute(f"DROP DATABASE IF EXISTS {name}")  # refuses if someone connected
            except psycopg.Error:
                continue
            removed.append(name)
        schemas = [row[0] for row in conn.execute("SELECT nspname FROM pg_namespace")]
        for schema in schemas:
            if not stale(schema):
                continue
            try:  # another test process may be dropping it too
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            except psycopg.Error:
                continue
            removed.append(schema)
    return removed
