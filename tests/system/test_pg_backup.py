"""A PostgreSQL store survives `pg_dump` and `pg_restore` as docs/deployment.md tells them.

The dump of a store with pushed visit reports, agreements and ledger entries restores into
a fresh database (where pg_restore runs with an empty search_path, so every index and
function of the schema must resolve its calls by itself); an app on the restored database
serves the same day, the same records and a ledger that verifies.
"""

from __future__ import annotations

import shutil
import subprocess
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

from server import create_app
from server.storage.connection import open_db
from sync.client import FieldClient
from tests import postgres
from tests.conftest import PASSWORD
from tests.system.test_sync_stateful import FlaskTransport

pytestmark = [
    pytest.mark.postgresql_only,
    pytest.mark.skipif(
        not (shutil.which("pg_dump") and shutil.which("pg_restore")),
        reason="pg_dump/pg_restore not installed",
    ),
]

TABLES = ("sync_records", "agreement_receipts", "exposure_ledger", "visits", "sessions")


def _in_database(url: str, database: str) -> str:
    """The server URL with another database name (and no search_path option)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}", query=""))


def _schema_of(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT current_schema()").fetchone()[0]


def _rows(db, table: str) -> list[tuple]:
    return [tuple(r.values()) for r in db.query(f"SELECT * FROM {table} ORDER BY 1")]


@pytest.fixture
def restored_database(store_engine):
    """A fresh empty database, dropped afterwards; yields its URL."""
    server = postgres.server_url()
    name = postgres._stamped("t", "restore")  # a killed run's copy is cleared as a leftover
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield _in_database(server, name)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_pg_dump_and_pg_restore_give_a_store_that_serves_the_same_data(
    world, auth, tmp_path, restored_database
):
    phone = FieldClient(
        FlaskTransport(world.app),
        tmp_path / "phone.db",
        "agent1",
        PASSWORD,
        "phone-agent1",
        clock=world.clock,
    )
    phone.sync()
    now = world.clock()
    visit = next(card for card in phone.cards() if card["id"] == world.visits["v1"])
    phone.record_agent_credential(visit["id"], "B-1", borrower_acknowledged=True)
    phone.record_visit_report(visit["id"], arrived_at=now, outcome="agreement_signed")
    phone.record_agreement(
        visit_id=visit["id"],
        case_id=visit["case_id"],
        installments=[("2026-12-24", "600.00"), ("2027-01-24", "600.00")],
        currency="CNY",
        template_id="repayment-plan-zh",
        template_version=1,
        borrower_signature=b"\x89PNG\r\n\x1a\nborrower",
        agent_signature=b"\x89PNG\r\n\x1a\nagent",
        signed_at=now,
        lat="31.201000",
        lon="121.401000",
    )
    assert len(phone.sync().acknowledged) == 3
    phone.close()

    headers = {user: auth.headers(user) for user in ("agent1", "privacy")}  # before the dump
    source = world.app.config["DATABASE"]
    schema = _schema_of(source)
    dump = tmp_path / "doorstep.dump"
    # docs/deployment.md's commands. A test store is a database of its own (dumped whole, as
    # in the docs) or, where the role may not create databases, a schema of a shared one
    # (then only that schema: `--schema` would also dump a `CREATE SCHEMA public`).
    only_schema = [] if schema == "public" else [f"--schema={schema}"]
    subprocess.run(
        [
            "pg_dump",
            "--format=custom",
            *only_schema,
            f"--file={dump}",
            _in_database(source, urlsplit(source).path.lstrip("/")),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    restore = subprocess.run(
        ["pg_restore", f"--dbname={restored_database}", str(dump)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert restore.returncode == 0, restore.stderr

    target = f"{restored_database}?options={quote(f'-csearch_path={schema}')}"
    restored_app = create_app(
        {
            "DATABASE": target,
            "STATE_DIR": str(tmp_path),  # the same development signing key
            "CLOCK": world.clock,
            "PASSWORD_TIME_COST": 1,
            "PASSWORD_MEMORY_COST_KIB": 1024,
            "DOORSTEP_ENV": "development",
            "RATE_PER_DEVICE_PER_MIN": 0,
            "RATE_PER_ADDRESS_PER_MIN": 0,
        }
    )
    before, after = open_db(source), open_db(target)
    try:
        for table in TABLES:
            assert _rows(after, table) == _rows(before, table), table
    finally:
        before.conn.close()
        after.conn.close()
    client, restored = world.app.test_client(), restored_app.test_client()
    # The verification first: a day view discloses borrower facts and so appends to the ledger.
    for path, user in (("/api/v1/audit/verify", "privacy"), ("/api/v1/me/day", "agent1")):
        original = client.get(path, headers=headers[user])
        copy = restored.get(path, headers=headers[user])
        assert (copy.status_code, copy.json) == (original.status_code, original.json), {
            k: (v, original.json.get(k)) for k, v in copy.json.items() if original.json.get(k) != v
        }
    assert restored.get("/api/v1/audit/verify", headers=headers["privacy"]).json["intact"]
    verify = restored_app.test_cli_runner().invoke(args=["ledger", "verify"])
    assert verify.exit_code == 0 and "ledger intact" in verify.output, verify.output
