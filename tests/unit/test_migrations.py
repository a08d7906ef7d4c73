"""Schema migrations: a fresh database, a re-run and an upgrade all end at the same schema."""

import json
import sqlite3
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


def test_versions_1_to_4_still_build_the_schema_taken_before_they_became_files(
    monkeypatch, fresh_db
):
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:4])
    migrations.migrate(fresh_db, NOW)
    assert schema_dump(fresh_db) == (GOLDEN / "schema-v0004.sql").read_text()


def test_a_fresh_database_has_that_schema_without_the_unused_agent_feed(monkeypatch, fresh_db):
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:5])
    migrations.migrate(fresh_db, NOW)
    golden = (GOLDEN / "schema-v0004.sql").read_text().split("\n\n")
    assert schema_dump(fresh_db).split("\n\n") == [
        block for block in golden if " on agent_feed\n" not in block
    ]
    assert not fresh_db["agent_feed"].exists()


def test_running_migrate_again_changes_nothing(fresh_db):
    migrations.migrate(fresh_db, NOW)
    before = schema_dump(fresh_db)
    recorded = fresh_db.execute("SELECT * FROM schema_migrations").fetchall()
    assert migrations.migrate(fresh_db, "2027-01-01T00:00:00Z") == []
    assert schema_dump(fresh_db) == before
    assert fresh_db.execute("SELECT * FROM schema_migrations").fetchall() == recorded


@pytest.mark.parametrize("done", [1, 2, 3, 4])
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


def test_the_sql_files_record_the_names_databases_already_hold():
    assert [(m.version, m.name) for m in migrations.MIGRATIONS[:4]] == [
        (1, "core"),
        (2, "sync"),
        (3, "audit"),
        (4, "raw record digests"),
    ]


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def test_sql_then_its_python_hook_run_in_order_in_one_transaction(tmp_path, monkeypatch, fresh_db):
    found = migrations.discover(
        _write(
            tmp_path / "m",
            {
                "0001_pets.sql": "-- a table\nCREATE TABLE pets (name TEXT);\n",
                "0002_named_pets.sql": "ALTER TABLE pets ADD COLUMN tag TEXT;",
                "0002_named_pets.py": (
                    "def run(db, now_iso):\n"
                    "    db.execute(\"INSERT INTO pets VALUES ('rex', ?)\", [now_iso])\n"
                ),
                "0003_backfill_only.py": (
                    "def run(db, now_iso):\n    db.execute(\"UPDATE pets SET tag = 'x'\")\n"
                ),
                "README.txt": "not a migration",
            },
        )
    )
    assert [(m.version, m.name, m.hook is not None) for m in found] == [
        (1, "pets", False),
        (2, "named pets", True),
        (3, "backfill only", True),
    ]
    monkeypatch.setattr(migrations, "MIGRATIONS", found)
    assert migrations.migrate(fresh_db, NOW) == [1, 2, 3]
    assert fresh_db.execute("SELECT name, tag FROM pets").fetchall() == [("rex", "x")]
    assert fresh_db.execute("SELECT version, name FROM schema_migrations").fetchall() == [
        (1, "pets"),
        (2, "named pets"),
        (3, "backfill only"),
    ]


def test_a_failing_hook_leaves_its_version_unapplied(tmp_path, monkeypatch, fresh_db):
    found = migrations.discover(
        _write(
            tmp_path / "m",
            {
                "0001_pets.sql": "CREATE TABLE pets (name TEXT);",
                "0002_broken.sql": "CREATE TABLE toys (name TEXT);",
                "0002_broken.py": "def run(db, now_iso):\n    raise RuntimeError('no')\n",
            },
        )
    )
    monkeypatch.setattr(migrations, "MIGRATIONS", found)
    with pytest.raises(RuntimeError):
        migrations.migrate(fresh_db, NOW)
    assert fresh_db.execute("SELECT version FROM schema_migrations").fetchall() == [(1,)]
    assert not fresh_db["toys"].exists()


@pytest.mark.parametrize(
    "files, problem",
    [
        ({"0001_a.sql": "SELECT 1;", "0003_c.sql": "SELECT 1;"}, "without gaps"),
        ({"0001_a.sql": "SELECT 1;", "0001_b.py": "def run(db, now_iso): pass\n"}, "two names"),
        ({"0001_a.sql": "CREATE TABLE t (x TEXT)"}, "ends inside a statement"),
        ({"0001_a.py": "def apply(db): pass\n"}, "must define run"),
    ],
)
def test_a_broken_migration_directory_is_refused(tmp_path, files, problem):
    with pytest.raises(migrations.BadMigrationFiles, match=problem):
        migrations.discover(_write(tmp_path / "m", files))


def test_blobs_stored_before_owners_belong_to_their_uploader(tmp_path, monkeypatch):
    """The blob owners version: each old blob is its uploader's, referenced when a stored
    record of that agent names it (in attachments or as an agreement signature)."""
    everything = list(migrations.MIGRATIONS)
    version = next(m.version for m in everything if m.name == "blob owners")
    db = open_db(str(tmp_path / "old.db"))
    try:
        monkeypatch.setattr(migrations, "MIGRATIONS", everything[: version - 1])
        migrations.migrate(db, NOW)
        db.execute(
            "INSERT INTO users (id, username, password_hash, role, display_name, created_at) "
            "VALUES (5, 'agent05', 'x', 'agent', 'A', ?)",
            [NOW],
        )
        for name in ("photo", "signature", "loose"):
            db.execute(
                "INSERT INTO blobs (sha256, size, content_type, data, created_at, uploaded_by) "
                "VALUES (?, 1, 'image/png', x'00', ?, 5)",
                [name * 8, NOW],
            )
        for record_id, kind, body in (
            ("r1", "visit_report", {"attachments": ["photo" * 8]}),
            ("r2", "agreement", {"borrower_signature_sha256": "signature" * 8}),
        ):
            db.execute(
                "INSERT INTO sync_records (id, kind, agent_id, device_id, visit_id, case_id, "
                "device_seq, recorded_at, received_at, digest, status, outcome, body) "
                "VALUES (?, ?, 5, 'phone', 1, 1, 1, ?, ?, 'd', 'accepted', '{}', ?)",
                [record_id, kind, NOW, NOW, json.dumps(body)],
            )
        monkeypatch.setattr(migrations, "MIGRATIONS", everything)
        assert version in migrations.migrate(db, "2027-01-01T00:00:00Z")
        rows = db.execute(
            "SELECT sha256, user_id, device_id, content_type, referenced_at FROM blob_owners "
            "ORDER BY sha256"
        ).fetchall()
        assert rows == [
            ("loose" * 8, 5, None, "image/png", None),
            ("photo" * 8, 5, None, "image/png", NOW),
            ("signature" * 8, 5, None, "image/png", NOW),
        ]
    finally:
        db.conn.close()


def _seed_before_the_lifecycle(db) -> None:
    """One closed case with a completed visit, as the versions before it allowed them."""
    db.execute(
        "INSERT INTO users (id, username, password_hash, role, display_name, created_at) "
        "VALUES (1, 'agent', 'x', 'agent', 'Agent', ?)",
        [NOW],
    )
    db.execute(
        "INSERT INTO borrowers (id, external_id, full_name, time_zone, created_at, updated_at) "
        "VALUES (1, 'B-1', 'Borrower', 'Asia/Shanghai', ?, ?)",
        [NOW, NOW],
    )
    db.execute(
        "INSERT INTO cases (id, external_id, borrower_id, product, overdue_amount, currency, "
        "days_past_due, status, closed_at, content_hash, created_at, updated_at) "
        "VALUES (1, 'C-1', 1, 'loan', '1.00', 'CNY', 3, 'closed', ?, 'h', ?, ?)",
        [NOW, NOW, NOW],
    )
    db.execute(
        "INSERT INTO visits (id, case_id, agent_id, visit_date, purpose, status, created_at, "
        "updated_at) VALUES (1, 1, 1, '2026-11-24', 'home_visit', 'completed', ?, ?)",
        [NOW, NOW],
    )


def test_the_visit_lifecycle_widens_the_statuses_and_renames_closed(tmp_path, monkeypatch):
    everything = list(migrations.MIGRATIONS)
    (lifecycle,) = [m.version for m in everything if m.name == "visit lifecycle"]
    old = open_db(str(tmp_path / "old.db"))
    try:
        monkeypatch.setattr(migrations, "MIGRATIONS", everything[: lifecycle - 1])
        migrations.migrate(old, NOW)
        _seed_before_the_lifecycle(old)
        monkeypatch.setattr(migrations, "MIGRATIONS", everything)
        assert lifecycle in migrations.migrate(old, NOW)
        assert old.execute("SELECT status, closed_at FROM cases").fetchall() == [
            ("closed_paid", NOW)
        ]
        old.execute("UPDATE visits SET status = 'missed'")
        old.execute("UPDATE cases SET status = 'closed_written_off'")
        with pytest.raises(sqlite3.IntegrityError):
            old.execute("UPDATE cases SET status = 'closed'")
        with pytest.raises(sqlite3.IntegrityError):
            old.execute("UPDATE visits SET status = 'done'")
        assert old.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert old.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        old.conn.close()
