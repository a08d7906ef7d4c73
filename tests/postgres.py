"""The PostgreSQL half of the test run: where the server is, and a fresh schema per test.

The API, sync, audit and system tests run once on SQLite and once on PostgreSQL: at
DOORSTEP_TEST_POSTGRES_URL when it is set, else at the local server (127.0.0.1:5432, trust
auth, database `test`) when one answers. Each PostgreSQL test gets a schema of its own,
dropped afterwards. With no server the PostgreSQL half is skipped and the run says so
loudly; under CI=true that is a failure.
"""

from __future__ import annotations

import functools
import os
import uuid
from urllib.parse import quote

LOCAL_CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)


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


def create_schema(url: str) -> tuple[str, str]:
    """A new empty schema; returns (its name, a URL whose connections use it)."""
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in url else "?"
    return schema, f"{url}{joiner}options={quote(f'-csearch_path={schema}')}"


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
