"""Visits joined with their case and borrower, and the visits' change history."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

Row = dict[str, Any]

_VISIT = (
    "id",
    "case_id",
    "agent_id",
    "visit_date",
    "window_start",
    "window_end",
    "route_order",
    "purpose",
    "notes",
    "status",
    "notice_kind",
    "notice_given_at",
    "notice_note",
    "cancel_reason",
    "version",
    "created_at",
    "updated_at",
    "last_outcome",
    "attempts",
    "last_attempt_at",
)
_CASE = (
    "id",
    "external_id",
    "borrower_id",
    "product",
    "overdue_amount",
    "currency",
    "days_past_due",
    "last_payment_date",
    "last_payment_amount",
    "hardship",
    "do_not_visit",
    "legal_hold",
    "dispute",
    "deceased",
    "status",
    "version",
)
_BORROWER = (
    "id",
    "full_name",
    "phones",
    "home_address",
    "home_lat",
    "home_lon",
    "work_address",
    "employer",
    "date_of_birth",
    "income",
    "time_zone",
)
_SELECT = ", ".join(
    [f"v.{c} AS v__{c}" for c in _VISIT]
    + [f"c.{c} AS c__{c}" for c in _CASE]
    + [f"b.{c} AS b__{c}" for c in _BORROWER]
)
_FROM = "FROM visits v JOIN cases c ON c.id = v.case_id JOIN borrowers b ON b.id = c.borrower_id"


_PART_NAMES = {"v": "visit", "c": "case", "b": "borrower"}
_SPLIT_KEYS: dict[str, tuple[str, str]] = {}  # "v__id" -> ("visit", "id"), learned once


def _split(row: Row) -> Row:
    """One joined row -> {"visit": {...}, "case": {...}, "borrower": {...}}."""
    parts: dict[str, Row] = {"visit": {}, "case": {}, "borrower": {}}
    for key, value in row.items():
        where = _SPLIT_KEYS.get(key)
        if where is None:
            prefix, _, column = key.partition("__")
            where = _SPLIT_KEYS[key] = (_PART_NAMES[prefix], column)
        parts[where[0]][where[1]] = value
    return parts


_CASE_AT = len(_VISIT)
_BORROWER_AT = _CASE_AT + len(_CASE)


def _joined(db: sqlite_utils.Database, where: str, params: Any, order: str = "v.id") -> list[Row]:
    # Values split by their place in _SELECT: no dict of prefixed names to take apart (a
    # pull reads its agent's days through here).
    cursor = db.execute(f"SELECT {_SELECT} {_FROM} WHERE {where} ORDER BY {order}", params)
    return [
        {
            "visit": dict(zip(_VISIT, values[:_CASE_AT], strict=True)),
            "case": dict(zip(_CASE, values[_CASE_AT:_BORROWER_AT], strict=True)),
            "borrower": dict(zip(_BORROWER, values[_BORROWER_AT:], strict=True)),
        }
        for values in cursor
    ]


def agent_day(db: sqlite_utils.Database, agent_id: int, visit_date: str) -> list[Row]:
    return _joined(
        db,
        "v.agent_id = ? AND v.visit_date = ? AND v.status != 'cancelled'",
        [agent_id, visit_date],
        order="v.route_order IS NULL, v.route_order, v.window_start IS NULL, v.window_start, v.id",
    )


def agent_visits_between(
    db: sqlite_utils.Database, agent_id: int, first_day: str, last_day: str
) -> list[Row]:
    """An agent's non-cancelled visits on these days, in day and route order."""
    return _joined(
        db,
        "v.agent_id = ? AND v.visit_date BETWEEN ? AND ? AND v.status != 'cancelled'",
        [agent_id, first_day, last_day],
        order="v.visit_date, v.route_order IS NULL, v.route_order, v.id",
    )


def joined_by_ids(db: sqlite_utils.Database, visit_ids: list[int]) -> list[Row]:
    """These visits with their case and borrower, by visit id (unknown ids are skipped)."""
    if not visit_ids:
        return []
    return _joined(db, f"v.id IN ({','.join('?' * len(visit_ids))})", list(visit_ids))


def get_joined(db: sqlite_utils.Database, visit_id: int) -> Row | None:
    rows = _joined(db, "v.id = ?", [visit_id])
    return rows[0] if rows else None


def agent_visits_for(
    db: sqlite_utils.Database, agent_id: int, column: str, value: int
) -> list[Row]:
    """An agent's non-cancelled visits to one case or borrower, newest day first."""
    where = {"case": "v.case_id = ?", "borrower": "c.borrower_id = ?"}[column]
    return _joined(
        db,
        f"v.agent_id = ? AND v.status != 'cancelled' AND {where}",
        [agent_id, value],
        order="v.visit_date DESC, v.id",
    )


def list_joined(db: sqlite_utils.Database, filters: Row, after: int, limit: int) -> list[Row]:
    """One page of visits with case and borrower, by id."""
    clauses, params = ["v.id > :after"], {"after": after, "limit": limit}
    for key in ("visit_date", "agent_id", "status", "case_id"):
        if filters.get(key) is not None:
            clauses.append(f"v.{key} = :{key}")
            params[key] = filters[key]
    if filters.get("no_agent"):
        clauses.append("v.agent_id IS NULL")
    return [
        _split(r)
        for r in db.query(
            f"SELECT {_SELECT} {_FROM} WHERE {' AND '.join(clauses)} ORDER BY v.id LIMIT :limit",
            params,
        )
    ]


def get_visit(db: sqlite_utils.Database, visit_id: int) -> Row | None:
    rows = list(db.query("SELECT * FROM visits WHERE id = ?", [visit_id]))
    return rows[0] if rows else None


def visits_by_ids(db: sqlite_utils.Database, visit_ids: list[int]) -> dict[int, Row]:
    """These visits' own rows, by id (unknown ids are skipped)."""
    if not visit_ids:
        return {}
    return {
        row["id"]: row
        for row in db.query(
            "SELECT * FROM visits WHERE id IN (SELECT value FROM json_each(?))",
            [json.dumps(visit_ids)],
        )
    }


def update_visits(
    db: sqlite_utils.Database, columns: list[str], updates: list[tuple[int, int, Row]]
) -> None:
    """Set the same `columns` on many visits at once, each (id, expected version, values) and
    each only if its version is still the expected one; every version is bumped."""
    if not updates:
        return
    sets = ", ".join(f"{c} = :{c}" for c in columns)
    db.conn.executemany(
        f"UPDATE visits SET {sets}, version = version + 1 WHERE id = :id AND version = :expected",
        [{**values, "id": visit_id, "expected": version} for visit_id, version, values in updates],
    )


def insert_visit(db: sqlite_utils.Database, visit: Row) -> int:
    columns = [c for c in _VISIT if c in visit and c != "id"] + ["created_by", "updated_by"]
    values = {**visit, "created_by": visit.get("updated_by"), "updated_by": visit.get("updated_by")}
    cursor = db.execute(
        f"INSERT INTO visits ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})",
        values,
    )
    return int(cursor.lastrowid)


def update_visit(
    db: sqlite_utils.Database, visit_id: int, expected_version: int, changes: Row
) -> bool:
    """Apply changes and bump the version, only if nobody changed it since `expected_version`."""
    sets = ", ".join(f"{c} = :{c}" for c in changes)
    cursor = db.execute(
        f"UPDATE visits SET {sets}, version = version + 1 WHERE id = :id AND version = :expected",
        {**changes, "id": visit_id, "expected": expected_version},
    )
    return cursor.rowcount == 1


def record_history(
    db: sqlite_utils.Database, visit: Row, changed_at: str, changed_by: int | None
) -> None:
    db.execute(
        "INSERT INTO visit_history (visit_id, version, agent_id, visit_date, status, changed_at, "
        "changed_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            visit["id"],
            visit["version"],
            visit["agent_id"],
            visit["visit_date"],
            visit["status"],
            changed_at,
            changed_by,
        ],
    )


def case_visit_dates(
    db: sqlite_utils.Database, case_id: int, exclude_visit: int | None
) -> list[str]:
    """Dates of the case's planned or completed visits (for the frequency rule)."""
    return [
        r[0]
        for r in db.execute(
            "SELECT visit_date FROM visits WHERE case_id = ? AND status != 'cancelled' AND id != ?",
            [case_id, exclude_visit or 0],
        )
    ]


def planned_day(db: sqlite_utils.Database, agent_id: int, visit_date: str) -> list[Row]:
    return list(
        db.query(
            "SELECT * FROM visits WHERE agent_id = ? AND visit_date = ? AND status = 'planned' "
            "ORDER BY route_order IS NULL, route_order, id",
            [agent_id, visit_date],
        )
    )


def unassigned_day(db: sqlite_utils.Database, visit_date: str) -> list[Row]:
    """The day's planned visits that no agent holds, with case and borrower."""
    return _joined(
        db, "v.agent_id IS NULL AND v.visit_date = ? AND v.status = 'planned'", [visit_date]
    )


def record_history_of(
    db: sqlite_utils.Database, visit_ids: list[int], changed_at: str, changed_by: int | None
) -> None:
    """A history row for each of these visits as they are now."""
    if not visit_ids:
        return
    db.execute(
        "INSERT INTO visit_history (visit_id, version, agent_id, visit_date, status, changed_at, "
        "changed_by) SELECT id, version, agent_id, visit_date, status, ?, ? FROM visits "
        "WHERE id IN (SELECT value FROM json_each(?))",
        [changed_at, changed_by, json.dumps(visit_ids)],
    )


def day_close_candidates(db: sqlite_utils.Database, last_day: str) -> list[Row]:
    """Planned visits on or before `last_day`, with their borrower's time zone."""
    return list(
        db.query(
            "SELECT v.id, v.visit_date, b.time_zone FROM visits v "
            "JOIN cases c ON c.id = v.case_id JOIN borrowers b ON b.id = c.borrower_id "
            "WHERE v.status = 'planned' AND v.visit_date <= ? ORDER BY v.id",
            [last_day],
        )
    )


def set_status_where(
    db: sqlite_utils.Database,
    visit_ids: list[int],
    from_status: str,
    changes: Row,
) -> list[int]:
    """Apply `changes` (a new status and its companions) to those of these visits still in
    `from_status`, bumping their versions; returns the ids changed."""
    sets = ", ".join(f"{c} = :{c}" for c in changes)
    rows = db.execute(
        f"UPDATE visits SET {sets}, version = version + 1 WHERE status = :from_status "
        "AND id IN (SELECT value FROM json_each(:ids)) RETURNING id",
        {**changes, "from_status": from_status, "ids": json.dumps(visit_ids)},
    ).fetchall()
    return sorted(r[0] for r in rows)


def planned_of_cases(db: sqlite_utils.Database, case_ids: list[int]) -> list[tuple[int, int]]:
    """(visit id, case id) of the planned visits of these cases."""
    return [
        (r[0], r[1])
        for r in db.execute(
            "SELECT id, case_id FROM visits WHERE status = 'planned' "
            "AND case_id IN (SELECT value FROM json_each(?)) ORDER BY id",
            [json.dumps(case_ids)],
        )
    ]


def planned_of_borrower(db: sqlite_utils.Database, borrower_id: int) -> list[Row]:
    """The borrower's planned visits, with case and borrower."""
    return _joined(db, "c.borrower_id = ? AND v.status = 'planned'", [borrower_id])


def replan_candidates(db: sqlite_utils.Database, filters: Row, after: int, limit: int) -> list[Row]:
    """Attempted or missed visits between two days with no later visit of their case still
    standing (planned, or carried out), with case and borrower, by id."""
    clauses = [
        "v.id > :after",
        "v.status IN ('attempted', 'missed')",
        "v.visit_date BETWEEN :since AND :until",
        "NOT EXISTS (SELECT 1 FROM visits later WHERE later.case_id = v.case_id "
        "AND later.status != 'cancelled' AND later.id != v.id "
        "AND (later.visit_date > v.visit_date "
        "OR (later.visit_date = v.visit_date AND later.id > v.id)))",
    ]
    params = {**filters, "after": after, "limit": limit}
    if filters.get("agent_id") is not None:
        clauses.append("v.agent_id = :agent_id")
    return [
        _split(r)
        for r in db.query(
            f"SELECT {_SELECT} {_FROM} WHERE {' AND '.join(clauses)} ORDER BY v.id LIMIT :limit",
            params,
        )
    ]


def day_close_marker(db: sqlite_utils.Database) -> str | None:
    """The last boundary the day close ran at."""
    row = db.execute("SELECT closed_through FROM day_close WHERE id = 1").fetchone()
    return row[0] if row else None


def set_day_close_marker(db: sqlite_utils.Database, boundary: str) -> None:
    db.execute(
        "INSERT INTO day_close (id, closed_through) VALUES (1, ?) "
        "ON CONFLICT (id) DO UPDATE SET closed_through = excluded.closed_through",
        [boundary],
    )


def day_counts(db: sqlite_utils.Database, day: str) -> list[Row]:
    """How many visits each agent (or nobody) has on a day, by status: counts, no visit."""
    return list(
        db.query(
            "SELECT agent_id, status, COUNT(*) AS n FROM visits WHERE visit_date = ? "
            "GROUP BY agent_id, status",
            [day],
        )
    )
