"""Schema migrations: a fresh database, a re-run and an upgrade all end at the same schema."""

from pathlib import Path

import pytest

from server.storage import migrations
from server.storage.connection import open_db

GOLDEN = Path(__file__).parent / "golden"
NOW = "2026-11-24T00:00:00Z"


def schema_dump(db) -> str:
    """Every object in sqlite_master as SQL text, in a stable order (rootpages left out)."""
    rows = db.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
    ).fetchall()
    return "".join(
        f"-- {kind} {name} on {table}\n{sql or '(created by SQLite)'};\n\n"
        for kind, name, table, sql in rows
    )


@pytest.fixture
def fresh_db(tmp_path):
    db = open_db(str(tmp_path / "fresh.db"))
    yield db
    db.conn.close()


def test_a_fresh_database_gets_the_schema_of_version_4(fresh_db):
    migrations.migrate(fresh_db, NOW)
    assert schema_dump(fresh_db) == (GOLDEN / "schema-v0004.sql").read_text()


def test_running_migrate_again_changes_nothing(fresh_db):
    migrations.migrate(fresh_db, NOW)
    before = schema_dump(fresh_db)
    recorded = fresh_db.execute("SELECT * FROM schema_migrations").fetchall()
    assert migrations.migrate(fresh_db, "2027-01-01T00:00:00Z") == []
    assert schema_dump(fresh_db) == before
    assert fresh_db.execute("SELECT * FROM schema_migrations").fetchall() == recorded


@pytest.mark.parametrize("done", [1, 2, 3])
def test_a_database_at_an_older_version_upgrades_to_the_same_schema(
    tmp_path, monkeypatch, fresh_db, done
):
    everything = list(migrations.MIGRATIONS)
    old = open_db(str(tmp_path / "old.db"))
    try:
        monkeypatch.setattr(migrations, "MIGRATIONS", everything[:done])
        assert migrations.migrate(old, "2025-01-01T00:00:00Z") == list(range(1, done + 1))
        monkeypatch.setattr(migrations, "MIGRATIONS", everything)
        applied = migrations.migrate(old, NOW)
        migrations.migrate(fresh_db, NOW)
        assert applied == list(range(done + 1, len(everything) + 1))
        assert schema_dump(old) == schema_dump(fresh_db)
        versions = old.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
        assert [v for v, _ in versions] == list(range(1, len(everything) + 1))
        assert dict(versions)[done] == "2025-01-01T00:00:00Z"
    finally:
        old.conn.close()
