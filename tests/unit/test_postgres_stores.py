"""The test run's PostgreSQL stores: a copy of the template is migrated and empty, and the
clean-up of killed runs drops only stale names of ours that nobody uses."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from server.storage.connection import open_db
from server.storage.migrations import MIGRATIONS, migrate
from tests import postgres


@pytest.fixture
def server() -> str:
    url = postgres.server_url()
    if url is None:
        pytest.skip("PostgreSQL half skipped: no server (see the end of the run)")
    return url


def _databases(server: str) -> set[str]:
    with psycopg.connect(server) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def test_a_copy_of_the_template_is_migrated_and_holds_no_rows(server):
    template = postgres.create_template(server, "unit", "2026-11-24T02:00:00Z")
    if template is None:
        pytest.skip("this role may not create databases")
    try:
        name, url = postgres.clone_database(server, template)
        db = open_db(url)
        try:
            assert migrate(db, "2026-11-25T00:00:00Z") == []  # nothing left to apply
            versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations")]
            assert versions == [m.version for m in MIGRATIONS]
            assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 0
            assert db.execute("SELECT count(*) FROM ledger_keys").fetchone()[0] == 0
        finally:
            db.conn.close()
        postgres.drop_database(server, name)
        assert name not in _databases(server)
    finally:
        postgres.drop_database(server, template)


def test_leftovers_older_than_an_hour_go_and_younger_ones_stay(server):
    hour_and_a_bit = postgres.STALE_AFTER_S + 60
    tail = uuid.uuid4().hex[:12]  # runs of other checkouts share the server
    old = f"t_{int(time.time()) - hour_and_a_bit:08x}_unit_left_behind_{tail}"
    young = f"t_{int(time.time()):08x}_unit_in_progress_{tail}"
    other = f"t_someone_elses_database_{tail}"
    with psycopg.connect(server, autocommit=True) as conn:
        for name in (old, young, other):
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        conn.execute(f"CREATE SCHEMA {old}")
    try:
        removed = postgres.remove_leftovers(server)  # (another run may have beaten it to old)
        assert young not in removed and other not in removed
        assert {old, young, other} & _databases(server) == {young, other}
        with psycopg.connect(server) as conn:
            schemas = {row[0] for row in conn.execute("SELECT nspname FROM pg_namespace")}
        assert old not in schemas
    finally:
        for name in (old, young, other):
            postgres.drop_database(server, name)
        postgres.drop_schema(server, old)


def test_a_stale_database_someone_is_connected_to_stays(server):
    tail = uuid.uuid4().hex[:12]
    old = f"t_{int(time.time()) - postgres.STALE_AFTER_S - 60:08x}_unit_still_used_{tail}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {old}")
        conn.execute(f"CREATE DATABASE {old}")
    try:
        with psycopg.connect(postgres.database_url(server, old)):
            assert old not in postgres.remove_leftovers(server)
            assert old in _databases(server)
    finally:
        postgres.drop_database(server, old)
