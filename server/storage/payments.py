"""Payments, promises to pay (every source) and the facts the tracking of them reads."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils
from sqlite_utils.utils import dedupe_keys

Row = dict[str, Any]

_PAYMENT_COLUMNS = (
    "id",
    "case_id",
    "amount",
    "currency",
    "paid_at",
    "source",
    "content_hash",
    "imported_at",
    "imported_by",
)


def _ids(values: list[Any]) -> str:
    return json.dumps(sorted(set(values)))


def _rows(db: sqlite_utils.Database, sql: str, params: list[Any]) -> list[Row]:
    """list(db.query(sql, params)) for a read: the same dicts, without the savepoint pair
    sqlite-utils wraps around every query (every pull reads three of these)."""
    cursor = db.execute(sql, params)
    keys = dedupe_keys(d[0] for d in cursor.description)
    return [dict(zip(keys, row, strict=True)) for row in cursor]


def cases_by_external_id(db: sqlite_utils.Database, external_ids: list[str]) -> dict[str, Row]:
    """External id -> {id, currency} of the cases that exist."""
    rows = db.query(
        "SELECT id, external_id, currency FROM cases "
        "WHERE external_id IN (SELECT value FROM json_each(?))",
        [_ids(external_ids)],
    )
    return {r["external_id"]: r for r in rows}


def payment_hashes(db: sqlite_utils.Database, payment_ids: list[str]) -> dict[str, str]:
    """Payment id -> content hash of the payments already stored."""
    rows = db.execute(
        "SELECT id, content_hash FROM payments WHERE id IN (SELECT value FROM json_each(?))",
        [_ids(payment_ids)],
    )
    return dict(rows.fetchall())


def insert_payments(db: sqlite_utils.Database, payments: list[Row]) -> None:
    db.conn.executemany(
        f"INSERT INTO payments ({', '.join(_PAYMENT_COLUMNS)}) "
        f"VALUES ({', '.join(':' + c for c in _PAYMENT_COLUMNS)})",
        payments,
    )


def payments_for_cases(db: sqlite_utils.Database, case_ids: list[int]) -> list[Row]:
    return _rows(
        db,
        "SELECT id, case_id, amount, currency, paid_at FROM payments "
        "WHERE case_id IN (SELECT value FROM json_each(?)) ORDER BY paid_at, id",
        [_ids(case_ids)],
    )


def promises_for_cases(db: sqlite_utils.Database, case_ids: list[int]) -> list[Row]:
    """Every promise to pay of these cases, from visit reports and every other source.

    The ids are written as parameters, not as one JSON list: SQLite pushes a plain IN list
    into each branch of the all_promises view (the cases' index), where `IN (SELECT value
    FROM json_each(?))` made it read every visit report in the store first."""
    ids = sorted(set(case_ids))
    if not ids:
        return []
    return _rows(
        db, f"SELECT * FROM all_promises WHERE case_id IN ({','.join('?' * len(ids))})", ids
    )


def agreements_for_cases(db: sqlite_utils.Database, case_ids: list[int]) -> list[Row]:
    """Stored agreements of these cases (their record id, agent, visit and body)."""
    return _rows(
        db,
        "SELECT id, case_id, agent_id, visit_id, body FROM sync_records "
        "WHERE kind = 'agreement' AND case_id IN (SELECT value FROM json_each(?))",
        [_ids(case_ids)],
    )


def cases_with_obligations(
    db: sqlite_utils.Database, after: int, limit: int, agent_ids: list[int] | None
) -> list[int]:
    """Ids above `after` of open-or-legal cases with a promise or an agreement, ascending;
    only those with one recorded by one of `agent_ids` when it is given."""
    agents = "" if agent_ids is None else "AND agent_id IN (SELECT value FROM json_each(:agents))"
    rows = db.execute(
        "SELECT DISTINCT o.case_id FROM ("
        f"  SELECT case_id, agent_id FROM all_promises WHERE case_id > :after {agents}"
        "   UNION ALL SELECT case_id, agent_id FROM sync_records"
        f"  WHERE kind = 'agreement' AND case_id > :after {agents}"
        ") o JOIN cases c ON c.id = o.case_id WHERE c.closed_at IS NULL "
        "ORDER BY o.case_id LIMIT :limit",
        {"after": after, "limit": limit, "agents": _ids(agent_ids or [])},
    )
    return [r[0] for r in rows]


def case_facts(db: sqlite_utils.Database, case_ids: list[int]) -> dict[int, Row]:
    """Case id -> the case row with its borrower's time zone (`time_zone`)."""
    rows = db.query(
        "SELECT c.*, b.time_zone AS time_zone FROM cases c JOIN borrowers b ON b.id = "
        "c.borrower_id WHERE c.id IN (SELECT value FROM json_each(?))",
        [_ids(case_ids)],
    )
    return {r["id"]: r for r in rows}


def no_contact_channels(db: sqlite_utils.Database, borrower_ids: list[int]) -> dict[int, set]:
    """Borrower id -> channels of their standing do-not-contact requests (None: every one)."""
    found: dict[int, set] = {}
    for borrower_id, channel in db.execute(
        "SELECT borrower_id, channel FROM borrower_requests WHERE kind = 'do_not_contact' "
        "AND withdrawn_at IS NULL AND borrower_id IN (SELECT value FROM json_each(?))",
        [_ids(borrower_ids)],
    ):
        found.setdefault(borrower_id, set()).add(channel)
    return found


def agents_of_team(db: sqlite_utils.Database, team: str) -> list[int]:
    """The agents whose region is `team`."""
    return [r[0] for r in db.execute("SELECT user_id FROM agents WHERE region = ?", [team])]
