"""The visit register for supervision and audit: every visit attempt's time, place and
method, one page at a time, with the export written to the staff log."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import sqlite_utils

from server.domain.visit_register import ReviewKey, register_lines, review_keys
from server.runtime import Caller, Runtime
from server.services import flag_reviews
from server.services.staff_log import log_action
from server.storage import register as register_rows
from server.storage.connection import transaction

FILTERS = ("since", "until", "agent_id", "team", "case_id")


def _review_states(
    db: sqlite_utils.Database, keys: list[ReviewKey]
) -> dict[ReviewKey, dict[str, Any]]:
    """The review state (status, disposition) of each (record id, flag code), from the flag
    review queue: a flag nobody has touched is open."""
    return flag_reviews.review_states(db, keys)


def _record(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the register's rules read it: the outcome and body parts parsed."""
    body = {part: row[f"body__{part}"] for part in register_rows.REPORT_PARTS}
    if isinstance(body["location"], str):
        body["location"] = json.loads(body["location"])
    body = {key: value for key, value in body.items() if value is not None}
    return {
        "id": row["id"],
        "kind": row["kind"],
        "visit_id": row["visit_id"],
        "agent_id": row["agent_id"],
        "recorded_at": row["recorded_at"],
        "outcome": json.loads(row["outcome"]),
        "body": body,
    }


def _query(filters: dict[str, Any]) -> dict[str, Any]:
    """Storage filters: a single `day` is the range day..day; dates as ISO text."""
    query = {key: filters.get(key) for key in FILTERS}
    if filters.get("day") is not None:
        query["since"] = query["until"] = filters["day"]
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in query.items()}


def register_page(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    filters: dict[str, Any],
    fmt: str,
) -> dict[str, Any]:
    """One page of the register (`after`/`limit` count visits) and the staff-log row of
    its export, with the filters, the format and the number of lines."""
    query = _query(filters)
    after, limit = filters["after"], filters["limit"]
    with transaction(db):
        visits = register_rows.register_visits(db, query, after, limit)
        records = [
            _record(row)
            for row in register_rows.register_records(db, [v["visit_id"] for v in visits])
        ]
        reviews = _review_states(db, review_keys(records))
        lines = register_lines(visits, records, reviews, grace_s=rt.compliance.credential_grace_s)
        next_after = visits[-1]["visit_id"] if len(visits) == limit else None
        shown = {k: v for k, v in query.items() if v is not None}
        log_action(
            db,
            caller,
            "visit_register.export",
            "visit_register",
            None,
            {
                "format": fmt,
                "filters": shown,
                "after": after,
                "limit": limit,
                "visits": len(visits),
                "rows": len(lines),
            },
        )
    return {
        "filters": shown,
        "generated_at": caller.now,
        "items": lines,
        "next_after": next_after,
    }


def case_register(db: sqlite_utils.Database, rt: Runtime, case_id: int) -> list[dict[str, Any]]:
    """Every register line of one case, all its visits (for the case's evidence pack, whose
    build is itself logged and ledgered; no export row here). The caller holds a snapshot."""
    query = {key: None for key in FILTERS} | {"case_id": case_id}
    visits, after = [], 0
    while page := register_rows.register_visits(db, query, after, 1000):
        visits += page
        after = page[-1]["visit_id"]
    records = [
        _record(row) for row in register_rows.register_records(db, [v["visit_id"] for v in visits])
    ]
    reviews = _review_states(db, review_keys(records))
    return register_lines(visits, records, reviews, grace_s=rt.compliance.credential_grace_s)


CSV_COLUMNS = (
    "visit_date",
    "agent_name",
    "team",
    "case_external_id",
    "borrower_name",
    "method",
    "planned_window_start",
    "planned_window_end",
    "visit_status",
    "attempt",
    "arrived_at",
    "contacted_at",
    "departed_at",
    "arrived_local",
    "contacted_local",
    "departed_local",
    "outcome",
    "reported_lat",
    "reported_lon",
    "accuracy_m",
    "distance_from_home_m",
    "badge_shown_before_contact",
    "identity_result",
    "third_party_present",
    "debt_discussed_with_third_party",
    "flags",
    "visit_id",
    "agent_id",
    "case_id",
    "record_id",
)


def _yes_no(value: Any) -> Any:
    return {True: "yes", False: "no"}.get(value, value) if isinstance(value, bool) else value


def csv_rows(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dumped register lines as CSV rows: yes/no for booleans, each flag as
    `code (review status[: disposition])`."""
    rows = []
    for line in lines:
        row = {key: _yes_no(value) for key, value in line.items()}
        row["flags"] = [
            f"{f['code']} ({f['review_status'] or 'unreviewed'}"
            + (f": {f['review_disposition']})" if f.get("review_disposition") else ")")
            for f in line.get("flags") or []
        ]
        rows.append(row)
    return rows
