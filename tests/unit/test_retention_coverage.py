"""The retention sweep: every table and column of the store is reached by a retention rule
or kept with a stated reason, so a table added later cannot escape every clock."""

from __future__ import annotations

import json

import pytest

from server.domain.retention import KINDS, NOTES, PERSONAL, PERSONAL_COLUMNS
from server.domain.retention_coverage import (
    COVERAGE,
    NOTE_COLUMNS,
    RECORD_NOTE_KEYS,
    uncovered,
)
from server.storage import migrations
from server.storage.connection import open_db
from server.storage.migrations import migrate


@pytest.fixture(scope="module")
def schema() -> dict[str, list[str]]:
    db = open_db(":memory:")
    migrate(db, "2026-11-24T00:00:00.000000Z")
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: [r[1] for r in db.execute(f"PRAGMA table_info([{t}])")] for t in tables}


def _types(table: str) -> dict[str, str]:
    db = open_db(":memory:")
    migrate(db, "2026-11-24T00:00:00.000000Z")
    return {r[1]: r[2] for r in db.execute(f"PRAGMA table_info([{table}])")}


def test_every_table_and_column_has_a_rule_or_a_reason(schema):
    assert uncovered(schema) == []


def test_a_new_table_or_a_new_column_of_a_kept_table_is_reported(schema):
    grown = {
        **schema,
        "contact_log": ["id", "case_id", "notes"],
        "visits": [*schema["visits"], "borrower_mood"],
    }
    assert uncovered(grown) == [
        "table contact_log: no retention rule and no exemption",
        "visits.borrower_mood: its row is kept and no rule erases the column",
    ]
    assert uncovered({k: v for k, v in schema.items() if k != "blobs"}) == [
        "table blobs: gone from the schema"
    ]


def test_every_rule_names_a_kind_and_a_reason():
    for table, rule in COVERAGE.items():
        assert rule.rows is None or rule.rows in KINDS, table
        assert set(rule.erased.values()) <= set(KINDS), table
        assert rule.why, table
        assert rule.rows is None or not rule.kept, f"{table}: its rows go, nothing is kept"


def test_bytes_live_only_in_tables_whose_rows_a_clock_removes(schema):
    for table in schema:
        if table.startswith("sqlite_"):
            continue
        blobs = [c for c, kind in _types(table).items() if kind.upper() == "BLOB"]
        if blobs:
            assert COVERAGE[table].rows is not None, (table, blobs)


def test_the_purge_erases_exactly_what_the_list_says():
    noted = {(n.table, n.column) for n in NOTE_COLUMNS}
    erased_as_notes = {
        (table, column)
        for table, rule in COVERAGE.items()
        for column, kind in rule.erased.items()
        if kind == NOTES and table != "sync_records"
    }
    assert noted == erased_as_notes
    assert COVERAGE["sync_records"].erased == {"body": NOTES} and RECORD_NOTE_KEYS == ("notes",)
    personal = {c for c, kind in COVERAGE["borrowers"].erased.items() if kind == PERSONAL}
    assert personal == set(PERSONAL_COLUMNS)


def test_records_stored_before_the_upgrade_keep_their_blobs(tmp_path, monkeypatch):
    """The retention-kinds version finds the blobs every stored record references (its
    attachments, an agreement's two signatures); records stored after it get theirs by
    trigger, and a record's references go with it."""
    everything = list(migrations.MIGRATIONS)
    version = next(m.version for m in everything if m.name == "retention kinds")
    db = open_db(str(tmp_path / "old.db"))
    now = "2026-11-24T00:00:00.000000Z"

    def store(record_id, kind, body):
        db.execute(
            "INSERT INTO sync_records (id, kind, agent_id, device_id, visit_id, case_id, "
            "device_seq, recorded_at, received_at, digest, status, outcome, body) "
            "VALUES (?, ?, 5, 'phone', 1, 1, 1, ?, ?, 'd', 'accepted', '{}', ?)",
            [record_id, kind, now, now, json.dumps(body)],
        )

    try:
        monkeypatch.setattr(migrations, "MIGRATIONS", everything[: version - 1])
        migrations.migrate(db, now)
        db.execute(
            "INSERT INTO users (id, username, password_hash, role, display_name, created_at) "
            "VALUES (5, 'agent05', 'x', 'agent', 'A', ?)",
            [now],
        )
        store("r1", "visit_report", {"attachments": ["a" * 64, "b" * 64], "notes": "n"})
        store(
            "r2",
            "agreement",
            {"borrower_signature_sha256": "c" * 64, "agent_signature_sha256": "d" * 64},
        )
        store("r3", "id_confirmation", {"confirmation_kind": "agent_credential"})
        monkeypatch.setattr(migrations, "MIGRATIONS", everything)
        assert version in migrations.migrate(db, "2027-01-01T00:00:00Z")
        store(
            "r4",
            "agreement",
            {
                "borrower_signature_sha256": "e" * 64,
                "agent_signature_sha256": "e" * 64,
                "attachments": ["a" * 64],
            },
        )
        references = db.execute(
            "SELECT record_id, sha256 FROM blob_references ORDER BY record_id, sha256"
        ).fetchall()
        assert references == [
            ("r1", "a" * 64),
            ("r1", "b" * 64),
            ("r2", "c" * 64),
            ("r2", "d" * 64),
            ("r4", "a" * 64),
            ("r4", "e" * 64),
        ]
    finally:
        db.conn.close()
