"""PostgreSQL advisory locks belong to one store (database and schema), not the database.

Two Doorstep stores in two schemas of one database (the test suite's schema per test, or two
tenants) must not serialise each other's writes or skip each other's maintenance jobs, while
two connections to the same store still exclude each other. Needs the test PostgreSQL
server; skipped without one.
"""

from __future__ import annotations

import sqlite3

import pytest

from server.storage.connection import open_db
from server.storage.engine import WRITE_LOCK, advisory_key, job_lock
from tests import postgres


def test_the_key_depends_on_database_schema_and_lock():
    key = advisory_key("doorstep", "public", WRITE_LOCK)
    assert key == advisory_key("doorstep", "public", WRITE_LOCK)  # every node agrees
    others = {
        advisory_key("doorstep", "tenant_b", WRITE_LOCK),
        advisory_key("doorstep_staging", "public", WRITE_LOCK),
        advisory_key("doorstep", "public", "job:checkpoint"),
    }
    assert key not in others and len(others) == 3
    assert -(2**63) <= key < 2**63  # a bigint, as pg_advisory_lock takes


@pytest.fixture
def two_stores():
    """Two schemas of the test database; yields a function opening a connection to one."""
    server = postgres.server_url()
    if server is None:
        pytest.skip("PostgreSQL half skipped: no server (see the end of the run)")
    schemas = [postgres.create_schema(server) for _ in range(2)]
    opened = []

    def connect(n: int):
        db = open_db(schemas[n][1])
        db.conn.raw.execute("SET lock_timeout = '300ms'")  # a blocked writer gives up soon
        opened.append(db)
        return db

    yield connect
    for db in opened:
        db.conn.close()
    for name, _url in schemas:
        postgres.drop_schema(server, name)


def test_writers_of_two_schemas_do_not_wait_for_each_other(two_stores):
    writer_a, other_a, writer_b = two_stores(0), two_stores(0), two_stores(1)
    assert writer_a.conn.write_lock_key != writer_b.conn.write_lock_key
    writer_a.execute("BEGIN IMMEDIATE")
    try:
        # The same store: the second writer waits at BEGIN and gives up at its lock timeout.
        with pytest.raises(sqlite3.OperationalError, match="lock timeout"):
            other_a.execute("BEGIN IMMEDIATE")
        assert not other_a.conn.in_transaction
        # Another schema: its writer goes ahead at once.
        writer_b.execute("BEGIN IMMEDIATE")
        writer_b.execute("CREATE TABLE t (x INTEGER)")
        writer_b.conn.commit()
    finally:
        writer_a.conn.rollback()
    other_a.execute("BEGIN IMMEDIATE")  # released with writer A's transaction
    other_a.conn.rollback()


def test_a_job_running_on_one_store_does_not_make_another_store_skip_it(two_stores):
    node1_a, node2_a, node1_b = two_stores(0), two_stores(0), two_stores(1)
    with job_lock(node1_a, "checkpoint") as mine:
        assert mine is True
        with job_lock(node2_a, "checkpoint") as same_store:
            assert same_store is False
        with job_lock(node1_b, "checkpoint") as other_store:
            assert other_store is True
