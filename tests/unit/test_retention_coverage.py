"""The retention sweep: every table and column of the store is reached by a retention rule
or kept with a stated reason, so a table added later cannot escape every clock."""

from __future__ import annotations

import pytest

from server.domain.retention import KINDS, NOTES, PERSONAL, PERSONAL_COLUMNS
from server.domain.retention_coverage import (
    COVERAGE,
    NOTE_COLUMNS,
    RECORD_NOTE_KEYS,
    uncovered,
)
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
