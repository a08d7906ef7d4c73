"""Flag review items: the flags stored in field records' outcomes and on contact-log entries
that staff logged or imported, each with its review state (a missing row is an open item at
version 0), the transitions, and the figures of an agent's compliance summary."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

Row = dict[str, Any]

# Items are paged by position: the record's seq times this, plus the flag's index in the
# record's outcome. A record never carries this many flags (one per rule at most).
POSITION_STRIDE = 1000

_CODE = "json_extract(f.value, '$.code')"
# One row per (record, flag code): the first flag of that code in the record's outcome.
_ITEMS = f"""
SELECT r.seq * {POSITION_STRIDE} + f.key AS position, r.id AS record_id, {_CODE} AS code,
    r.kind, r.agent_id, r.visit_id, r.case_id, r.recorded_at, r.received_at, r.outcome,
    v.visit_date AS day, a.region AS team,
    coalesce(fr.status, 'open') AS status, fr.assignee_id, fr.disposition, fr.comment,
    fr.resolved_by, fr.resolved_at, coalesce(fr.version, 0) AS version,
    fr.updated_at, fr.updated_by
FROM sync_records r
JOIN json_each(r.outcome, '$.flags') f
JOIN visits v ON v.id = r.visit_id
LEFT JOIN agents a ON a.user_id = r.agent_id
LEFT JOIN flag_reviews fr ON fr.record_id = r.id AND fr.code = {_CODE}
WHERE NOT EXISTS (
    SELECT 1 FROM json_each(r.outcome, '$.flags') g
    WHERE g.key < f.key AND json_extract(g.value, '$.code') = {_CODE}
)
"""

# The contact-log entries staff logged or imported (a phone's synced contact is a field
# record: its flags are items above) are items named `contact-<entry id>`, listed after
# every field record's item: their positions start here.
CONTACT_PREFIX = "contact-"
CONTACT_POSITIONS = 10**15
_CONTACT_ITEMS = f"""
SELECT {CONTACT_POSITIONS} + k.id * {POSITION_STRIDE} + f.key AS position,
    '{CONTACT_PREFIX}' || k.id AS record_id, {_CODE} AS code,
    'contact' AS kind, k.agent_id, k.visit_id, k.case_id, k.occurred_at AS recorded_at,
    k.logged_at AS received_at, '{{"flags": ' || k.flags || '}}' AS outcome,
    coalesce(v.visit_date, substr(k.occurred_at, 1, 10)) AS day, a.region AS team,
    coalesce(fr.status, 'open') AS status, fr.assignee_id, fr.disposition, fr.comment,
    fr.resolved_by, fr.resolved_at, coalesce(fr.version, 0) AS version,
    fr.updated_at, fr.updated_by
FROM contacts k
JOIN json_each(k.flags) f
LEFT JOIN visits v ON v.id = k.visit_id
LEFT JOIN agents a ON a.user_id = k.agent_id
LEFT JOIN flag_reviews fr ON fr.record_id = '{CONTACT_PREFIX}' || k.id AND fr.code = {_CODE}
WHERE k.source != 'sync' AND NOT EXISTS (
    SELECT 1 FROM json_each(k.flags) g
    WHERE g.key < f.key AND json_extract(g.value, '$.code') = {_CODE}
)
"""

_FILTERS = {
    "agent_id": "r.agent_id = :agent_id",
    "visit_id": "r.visit_id = :visit_id",
    "day": "v.visit_date = :day",
    "team": "a.region = :team",
    "code": f"{_CODE} = :code",
    "status": "coalesce(fr.status, 'open') = :status",
    "assignee_id": "fr.assignee_id = :assignee_id",
}
_CONTACT_FILTERS = {
    **_FILTERS,
    "agent_id": "k.agent_id = :agent_id",
    "visit_id": "k.visit_id = :visit_id",
    "day": "coalesce(v.visit_date, substr(k.occurred_at, 1, 10)) = :day",
}
# Pages follow the records' seq (the rowid, so a page stops reading the store once it is
# full); within a record json_each walks the flags in array order, which is f.key order.
# ORDER BY r.seq, f.key would be the same order but makes SQLite sort every item first.
_ORDER = "ORDER BY r.seq"
_CONTACT_ORDER = "ORDER BY k.id"


def _items(clauses: list[str]) -> str:
    return _ITEMS + "".join(f" AND {clause}" for clause in clauses)


def _contact_items(clauses: list[str]) -> str:
    return _CONTACT_ITEMS + "".join(f" AND {clause}" for clause in clauses)


def list_items(db: sqlite_utils.Database, filters: Row, after: int, limit: int) -> list[Row]:
    """One page of review items after `after` (a position), with the filters given: the
    field records' items, then the contact-log entries'."""
    found: list[Row] = []
    if after < CONTACT_POSITIONS:
        params = {"after": after, "after_seq": after // POSITION_STRIDE, "limit": limit}
        clauses = ["r.seq >= :after_seq", f"r.seq * {POSITION_STRIDE} + f.key > :after"]
        for key, clause in _FILTERS.items():
            if filters.get(key) is not None:
                clauses.append(clause)
                params[key] = filters[key]
        found = list(db.query(f"{_items(clauses)} {_ORDER} LIMIT :limit", params))
    if len(found) < limit:
        start = max(after, CONTACT_POSITIONS - 1)
        params = {
            "after": start,
            "after_id": (start - CONTACT_POSITIONS) // POSITION_STRIDE,
            "limit": limit - len(found),
        }
        clauses = [
            "k.id >= :after_id",
            f"{CONTACT_POSITIONS} + k.id * {POSITION_STRIDE} + f.key > :after",
        ]
        for key, clause in _CONTACT_FILTERS.items():
            if filters.get(key) is not None:
                clauses.append(clause)
                params[key] = filters[key]
        found += db.query(f"{_contact_items(clauses)} {_CONTACT_ORDER} LIMIT :limit", params)
    return found


def contact_entry_id(record_id: str) -> int | None:
    """The contact-log entry an item's record id names (`contact-<id>`), else None."""
    if not record_id.startswith(CONTACT_PREFIX):
        return None
    number = record_id[len(CONTACT_PREFIX) :]
    return int(number) if number.isascii() and number.isdigit() and len(number) < 19 else None


def item(db: sqlite_utils.Database, record_id: str, code: str) -> Row | None:
    """One review item, or None when the record carries no flag of this code."""
    entry = contact_entry_id(record_id)
    if entry is not None:
        sql = _contact_items(["k.id = :entry", f"{_CODE} = :code"])
        rows = list(db.query(sql, {"entry": entry, "code": code}))
    else:
        sql = _items(["r.id = :record_id", f"{_CODE} = :code"])
        rows = list(db.query(sql, {"record_id": record_id, "code": code}))
    return rows[0] if rows else None


def history(db: sqlite_utils.Database, record_id: str, code: str) -> list[Row]:
    """Every transition of one item, oldest first."""
    return list(
        db.query(
            "SELECT action, from_status, to_status, assignee_id, disposition, comment, version, "
            "acted_by, acted_at FROM flag_review_history WHERE record_id = ? AND code = ? "
            "ORDER BY id",
            [record_id, code],
        )
    )


def save_state(db: sqlite_utils.Database, state: Row, expected_version: int) -> bool:
    """Write an item's new state if it is still at `expected_version` (0: no row yet);
    False when someone else moved it first."""
    if expected_version == 0:
        cursor = db.execute(
            "INSERT OR IGNORE INTO flag_reviews (record_id, code, status, assignee_id, "
            "disposition, comment, resolved_by, resolved_at, version, updated_at, updated_by) "
            "VALUES (:record_id, :code, :status, :assignee_id, :disposition, :comment, "
            ":resolved_by, :resolved_at, :version, :updated_at, :updated_by)",
            state,
        )
    else:
        cursor = db.execute(
            "UPDATE flag_reviews SET status = :status, assignee_id = :assignee_id, "
            "disposition = :disposition, comment = :comment, resolved_by = :resolved_by, "
            "resolved_at = :resolved_at, version = :version, updated_at = :updated_at, "
            "updated_by = :updated_by WHERE record_id = :record_id AND code = :code "
            "AND version = :expected",
            {**state, "expected": expected_version},
        )
    return cursor.rowcount == 1


def append_history(db: sqlite_utils.Database, entry: Row) -> None:
    db.execute(
        "INSERT INTO flag_review_history (record_id, code, action, from_status, to_status, "
        "assignee_id, disposition, comment, version, acted_by, acted_at) VALUES (:record_id, "
        ":code, :action, :from_status, :to_status, :assignee_id, :disposition, :comment, "
        ":version, :acted_by, :acted_at)",
        entry,
    )


def states(db: sqlite_utils.Database, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Row]:
    """The stored review rows of these (record id, code) keys; keys without a row are absent."""
    if not keys:
        return {}
    rows = db.query(
        "SELECT fr.record_id, fr.code, fr.status, fr.disposition FROM flag_reviews fr "
        "JOIN json_each(:keys) k ON fr.record_id = json_extract(k.value, '$[0]') "
        "AND fr.code = json_extract(k.value, '$[1]')",
        {"keys": json.dumps([list(key) for key in keys])},
    )
    return {(r["record_id"], r["code"]): r for r in rows}


def user(db: sqlite_utils.Database, user_id: int) -> Row | None:
    rows = list(db.query("SELECT id, role, active FROM users WHERE id = ?", [user_id]))
    return rows[0] if rows else None


def agent_exists(db: sqlite_utils.Database, agent_id: int) -> bool:
    return (
        db.execute("SELECT 1 FROM users WHERE id = ? AND role = 'agent'", [agent_id]).fetchone()
        is not None
    )


def visit_counts(db: sqlite_utils.Database, agent_id: int, start: str, end: str) -> dict[str, int]:
    """The agent's visits with a day in [start, end], counted by status."""
    return dict(
        db.execute(
            "SELECT status, count(*) FROM visits WHERE agent_id = ? AND visit_date BETWEEN ? "
            "AND ? GROUP BY status",
            [agent_id, start, end],
        ).fetchall()
    )


def flag_figures(db: sqlite_utils.Database, agent_id: int, start: str, end: str) -> list[Row]:
    """Per flag code, for the agent's records on visits with a day in [start, end] and the
    contacts staff logged or imported for the agent on those days: items, and those open,
    assigned, resolved, and resolved as each disposition."""
    # From the period's visits (visits_date index) to their records (sync_records_visit):
    # sync_records has no agent index, and the push path is not to pay for one.
    sql = _items(
        [
            "r.visit_id IN (SELECT id FROM visits WHERE visit_date BETWEEN :start AND :end)",
            "r.agent_id = :agent_id",
        ]
    )
    params = {"agent_id": agent_id, "start": start, "end": end}
    contacts = _contact_items(
        [
            "k.agent_id = :agent_id",
            "coalesce(v.visit_date, substr(k.occurred_at, 1, 10)) BETWEEN :start AND :end",
        ]
    )
    return [*db.query(sql, params), *db.query(contacts, params)]
