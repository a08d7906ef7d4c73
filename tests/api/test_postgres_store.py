"""What several app servers on one PostgreSQL store share: rate-limit buckets, maintenance
jobs that run on one node at a time, and backups that refuse to copy a file that is not
there. (Everything else is the same suite run on both engines.)"""

from __future__ import annotations

import sqlite3

import pytest

from server.storage.connection import open_db
from server.storage.engine import job_lock

pytestmark = pytest.mark.postgresql_only

STRANGER = {"REMOTE_ADDR": "203.0.113.9"}


def test_two_app_servers_share_one_address_allowance(make_app, app):
    # Two apps on the same store are two nodes: a burst of 5 per address (burst x 5).
    first = make_app(RATE_PER_ADDRESS_PER_MIN=60, RATE_BURST=1).test_client()
    second = make_app(RATE_PER_ADDRESS_PER_MIN=60, RATE_BURST=1).test_client()
    codes = [
        (first if n % 2 else second).get("/api/v1/health", environ_base=STRANGER).status_code
        for n in range(6)
    ]
    assert codes == [200] * 5 + [429]
    # Another address has its own bucket.
    assert first.get("/api/v1/health", environ_base={"REMOTE_ADDR": "203.0.113.10"}).status_code
    assert second.get("/api/v1/health", environ_base=STRANGER).status_code == 429


def test_a_maintenance_job_runs_on_one_node_and_the_others_skip(app):
    node1, node2 = open_db(app.config["DATABASE"]), open_db(app.config["DATABASE"])
    try:
        with job_lock(node1, "checkpoint") as mine:
            assert mine is True
            with job_lock(node2, "checkpoint") as theirs:
                assert theirs is False
            with job_lock(node2, "purge") as other_job:
                assert other_job is True
        with job_lock(node2, "checkpoint") as after:
            assert after is True
    finally:
        node1.conn.close()
        node2.conn.close()


def test_the_checkpoint_command_skips_while_another_node_runs_it(app, world):
    holder = open_db(app.config["DATABASE"])
    try:
        with job_lock(holder, "checkpoint"):
            result = app.test_cli_runner().invoke(args=["checkpoint"])
        assert result.exit_code == 0 and "skipped" in result.output
        assert holder.execute("SELECT count(*) FROM ledger_checkpoints").fetchone()[0] == 0
        result = app.test_cli_runner().invoke(args=["checkpoint"])
        assert result.exit_code == 0 and "checkpoint 1:" in result.output
    finally:
        holder.conn.close()


def test_backup_and_restore_refuse_instead_of_pretending(app, tmp_path):
    runner = app.test_cli_runner()
    backup = runner.invoke(args=["backup", str(tmp_path / "copy.db")])
    assert backup.exit_code != 0 and "pg_dump" in backup.output
    (tmp_path / "old.db").write_bytes(b"")
    restore = runner.invoke(args=["restore", str(tmp_path / "old.db")])
    assert restore.exit_code != 0 and "pg_restore" in restore.output


def test_the_ledger_refuses_updates_deletes_and_truncation(world, client, auth, db):
    assert client.get("/api/v1/sync/pull", headers=auth.headers("agent1")).status_code == 200
    assert db.execute("SELECT count(*) FROM exposure_ledger").fetchone()[0] > 0

    for statement in (
        "UPDATE exposure_ledger SET purpose = 'x'",
        "DELETE FROM exposure_ledger",
        "TRUNCATE exposure_ledger",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(statement)
    assert db.execute("SELECT count(*) FROM exposure_ledger").fetchone()[0] > 0
