"""Fixtures for the system tests that start real server processes: the store those
processes share, on each engine.

`server_engine` runs a test (or a module's server) once on SQLite and once on PostgreSQL;
`server_database` is then None (each trial uses the SQLite file in its folder) or the URL of
a fresh PostgreSQL schema, dropped afterwards, which the trial passes to its servers as
DOORSTEP_DATABASE_URL. `postgres_url` is such a schema for the PostgreSQL-only tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests import postgres


def _skip_without_server() -> str:
    server = postgres.server_url()
    if server is None:
        pytest.skip("PostgreSQL half skipped: no server (see the end of the run)")
    return server


@contextmanager
def fresh_postgres_store() -> Iterator[str]:
    """The URL of a fresh PostgreSQL schema, dropped on leaving (for a test that needs
    several stores, such as one per compliance profile)."""
    server = _skip_without_server()
    schema, url = postgres.create_schema(server)
    try:
        yield url
    finally:
        postgres.drop_schema(server, schema)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server_engine(request) -> str:
    """'sqlite' or 'postgresql': the engine of the servers this module starts."""
    if request.param == "postgresql":
        _skip_without_server()
    return request.param


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL schema (its URL), dropped after the test."""
    with fresh_postgres_store() as url:
        yield url


@pytest.fixture
def server_database(server_engine):
    """None on SQLite; on PostgreSQL the URL of a fresh schema, dropped after the test."""
    if server_engine == "sqlite":
        yield None
        return
    with fresh_postgres_store() as url:
        yield url
