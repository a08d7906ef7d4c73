"""What the visit register reads: visits with their case, borrower and agent, and the parts
of their stored reports and ID confirmations a register line shows (never a note, never
anything typed for an ID check)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

Row = dict[str, Any]

_VISITS = (
    "SELECT v.id AS visit_id, v.visit_date, v.window_start, v.window_end, v.purpose, v.status, "
    "v.agent_id, v.case_id, c.external_id AS case_external_id, b.full_name AS borrower_name, "
    "b.home_lat, b.home_lon, b.time_zone, u.display_name AS agent_name, a.region AS team "
    "FROM visits v JOIN cases c ON c.id = v.case_id JOIN borrowers b ON b.id = c.borrower_id "
    "LEFT JOIN users u ON u.id = v.agent_id LEFT JOIN agents a ON a.user_id = v.agent_id"
)

_EQUALS = {"agent_id": "v.agent_id", "case_id": "v.case_id", "team": "a.region"}
# Report fields a line shows, read one by one out of the stored body.
REPORT_PARTS = (
    "arrived_at",
    "contacted_at",
    "departed_at",
    "outcome",
    "location",
    "third_party_present",
    "debt_discussed_with_third_party",
    "confirmation_kind",
)


def register_visits(db: sqlite_utils.Database, filters: Row, after: int, limit: int) -> list[Row]:
    """One page of visits (by id) matching the filters: days `since`..`until`, `agent_id`,
    `team` (the agents' region), `case_id`."""
    clauses, params = ["v.id > :after"], {"after": after, "limit": limit}
    if filters.get("since") is not None:
        clauses.append("v.visit_date >= :since")
        params["since"] = filters["since"]
    if filters.get("until") is not None:
        clauses.append("v.visit_date <= :until")
        params["until"] = filters["until"]
    for key, column in _EQUALS.items():
        if filters.get(key) is not None:
            clauses.append(f"{column} = :{key}")
            params[key] = filters[key]
    return list(
        db.query(f"{_VISITS} WHERE {' AND '.join(clauses)} ORDER BY v.id LIMIT :limit", params)
    )


def register_records(db: sqlite_utils.Database, visit_ids: list[int]) -> list[Row]:
    """The stored visit reports and ID confirmations of these visits, in the order stored:
    ids, times, the stored outcome (JSON text) and the body's REPORT_PARTS."""
    if not visit_ids:
        return []
    parts = ", ".join(f"json_extract(body, '$.{part}') AS body__{part}" for part in REPORT_PARTS)
    return list(
        db.query(
            f"SELECT id, kind, visit_id, agent_id, recorded_at, outcome, {parts} "
            "FROM sync_records WHERE kind IN ('visit_report', 'id_confirmation') "
            "AND visit_id IN (SELECT value FROM json_each(:visits)) ORDER BY seq",
            {"visits": "[" + ",".join(str(int(v)) for v in visit_ids) + "]"},
        )
    )
