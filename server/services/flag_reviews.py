"""Flag review: every compliance flag on a stored record is an item a dispatcher assigns,
resolves with a disposition and may reopen; and an agent's compliance summary for a period.

An item is named by (record id, flag code). Nothing is written for it at push time: an item
without a stored state is open at version 0, and its first transition stores one. Each
transition checks the version the reviewer last saw, keeps a history entry and goes to the
staff log.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from typing import Any

import sqlite_utils

from server.clock import to_iso
from server.domain.roles import DISPATCHER
from server.errors import (
    InvalidInput,
    NotFound,
    ReviewAlreadyResolved,
    ReviewNotResolved,
    VersionConflict,
)
from server.runtime import Caller
from server.services.staff_log import log_action
from server.storage import accounts as account_rows
from server.storage import flag_reviews as review_rows
from server.storage.connection import transaction
from sync.visits import VISIT_STATUSES

OPEN, ASSIGNED, RESOLVED = "open", "assigned", "resolved"
REVIEW_STATUSES = (OPEN, ASSIGNED, RESOLVED)
DISPOSITIONS = ("justified", "breach", "data_error")
# Who may be given an item to review: the role that reviews (see docs/flag-review.md).
REVIEWER_ROLES = frozenset({DISPATCHER})
# The compliance summary's period when none is asked for.
SUMMARY_DAYS = 30


def _item_view(row: dict[str, Any], history: list[dict[str, Any]] | None = None) -> dict:
    outcome = json.loads(row["outcome"])
    flag = next((f for f in outcome.get("flags", []) if f.get("code") == row["code"]), {})
    view = {key: value for key, value in row.items() if key != "outcome"}
    view["message"] = flag.get("message")
    view["details"] = flag.get("details") or {}
    if history is not None:
        view["history"] = history
    return view


def list_flags(
    db: sqlite_utils.Database, filters: dict[str, Any], after: int, limit: int
) -> dict[str, Any]:
    """One page of review items, filtered by agent, code, visit day, status, team."""
    if isinstance(filters.get("day"), date):
        filters = {**filters, "day": filters["day"].isoformat()}
    rows = review_rows.list_items(db, filters, after, limit)
    items = [_item_view(row) for row in rows]
    return {"items": items, "next_after": rows[-1]["position"] if len(rows) == limit else None}


def _find(db: sqlite_utils.Database, record_id: str, code: str) -> dict[str, Any]:
    row = review_rows.item(db, record_id.lower(), code)
    if row is None:
        raise NotFound(f"record {record_id} carries no flag {code!r}", field="code")
    return row


def flag_item(db: sqlite_utils.Database, record_id: str, code: str) -> dict[str, Any]:
    """One review item with its flag's details and every transition so far."""
    row = _find(db, record_id, code)
    return _item_view(row, review_rows.history(db, row["record_id"], code))


def review_states(
    db: sqlite_utils.Database, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], dict]:
    """The review state (status, disposition) of each (record id, flag code) key; a key with
    no stored state is open. Keys are answered as given (record ids compared lowercased)."""
    stored = review_rows.states(db, [(record_id.lower(), code) for record_id, code in keys])
    found = {}
    for record_id, code in keys:
        row = stored.get((record_id.lower(), code))
        found[(record_id, code)] = {
            "status": row["status"] if row else OPEN,
            "disposition": row["disposition"] if row else None,
        }
    return found


def _stale(row: dict[str, Any], expected: int) -> VersionConflict:
    return VersionConflict(
        f"flag {row['code']} on record {row['record_id']} is at version {row['version']}, "
        f"not {expected}",
        field="version",
        current_version=row["version"],
    )


def _transition(
    db: sqlite_utils.Database,
    caller: Caller,
    record_id: str,
    code: str,
    expected: int,
    action: str,
    change: dict[str, Any],
) -> dict[str, Any]:
    """Check the version, apply `change` (status and fields), keep history, log, answer."""
    now = to_iso(caller.now)
    by = caller.principal.user_id if caller.principal else None
    with transaction(db):
        row = _find(db, record_id, code)
        if row["version"] != expected:
            raise _stale(row, expected)
        _check_allowed(row, action)
        state = {
            key: row[key]
            for key in (
                "record_id",
                "code",
                "status",
                "assignee_id",
                "disposition",
                "comment",
                "resolved_by",
                "resolved_at",
            )
        }
        state.update(change, version=expected + 1, updated_at=now, updated_by=by)
        if not review_rows.save_state(db, state, expected):
            raise _stale(_find(db, record_id, code), expected)
        review_rows.append_history(
            db,
            {
                "record_id": row["record_id"],
                "code": code,
                "action": action,
                "from_status": row["status"],
                "to_status": state["status"],
                "assignee_id": state["assignee_id"],
                "disposition": change.get("disposition"),
                "comment": change.get("comment"),
                "version": state["version"],
                "acted_by": by,
                "acted_at": now,
            },
        )
        # The comment is the reviewer's free text and may speak of the borrower: the staff
        # log keeps only that one was given; the item's history keeps the words.
        log_action(
            db,
            caller,
            f"flag_review_{action}",
            "flag_review",
            f"{row['record_id']}/{code}",
            {
                "from_status": row["status"],
                "to_status": state["status"],
                "assignee_id": state["assignee_id"],
                "disposition": change.get("disposition"),
                "comment_given": bool(change.get("comment")),
                "version": state["version"],
            },
        )
        return flag_item(db, row["record_id"], code)


def _check_allowed(row: dict[str, Any], action: str) -> None:
    if action in ("assign", "resolve") and row["status"] == RESOLVED:
        raise ReviewAlreadyResolved(
            f"flag {row['code']} on record {row['record_id']} is already resolved; reopen it first",
            field="status",
        )
    if action == "reopen" and row["status"] != RESOLVED:
        raise ReviewNotResolved(
            f"flag {row['code']} on record {row['record_id']} is {row['status']}, not resolved",
            field="status",
        )


def reviewers(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """The accounts an item may be assigned to: active users of a reviewer role."""
    return [
        {"id": u["id"], "username": u["username"], "display_name": u["display_name"]}
        for u in account_rows.list_users(db)
        if u["role"] in REVIEWER_ROLES and u["active"]
    ]


def assign(
    db: sqlite_utils.Database,
    caller: Caller,
    record_id: str,
    code: str,
    expected: int,
    assignee_id: int,
    comment: str | None = None,
) -> dict[str, Any]:
    """Give an open or assigned item to a reviewer (an active dispatcher)."""
    user = review_rows.user(db, assignee_id)
    if user is None or user["role"] not in REVIEWER_ROLES or not user["active"]:
        raise InvalidInput(
            f"user {assignee_id} is not an active reviewer (dispatcher)", field="assignee_id"
        )
    change = {"status": ASSIGNED, "assignee_id": assignee_id, "comment": comment}
    if comment is None:
        change.pop("comment")
    return _transition(db, caller, record_id, code, expected, "assign", change)


def resolve(
    db: sqlite_utils.Database,
    caller: Caller,
    record_id: str,
    code: str,
    expected: int,
    disposition: str,
    comment: str,
) -> dict[str, Any]:
    """Close an item with a disposition (justified, breach, data_error) and a comment."""
    by = caller.principal.user_id if caller.principal else None
    change = {
        "status": RESOLVED,
        "disposition": disposition,
        "comment": comment,
        "resolved_by": by,
        "resolved_at": to_iso(caller.now),
    }
    return _transition(db, caller, record_id, code, expected, "resolve", change)


def reopen(
    db: sqlite_utils.Database,
    caller: Caller,
    record_id: str,
    code: str,
    expected: int,
    comment: str,
) -> dict[str, Any]:
    """Reopen a resolved item: back to its assignee if it had one, else open; the earlier
    disposition stays in the history only."""
    row = _find(db, record_id, code)
    change = {
        "status": ASSIGNED if row["assignee_id"] else OPEN,
        "disposition": None,
        "comment": comment,
        "resolved_by": None,
        "resolved_at": None,
    }
    return _transition(db, caller, record_id, code, expected, "reopen", change)


def compliance_summary(
    db: sqlite_utils.Database,
    caller: Caller,
    agent_id: int,
    start: date | None = None,
    end: date | None = None,
) -> dict[str, Any]:
    """An agent's visits for days in [start, end] by status, its flags by code with their
    review state, breaches (items resolved as a breach) and items still to review. The
    period defaults to the SUMMARY_DAYS days ending today (UTC)."""
    end = end or (start + timedelta(days=SUMMARY_DAYS - 1) if start else caller.now.date())
    start = start or end - timedelta(days=SUMMARY_DAYS - 1)
    if end < start:
        raise InvalidInput("'to' is before 'from'", field="to")
    if not review_rows.agent_exists(db, agent_id):
        raise NotFound(f"no agent {agent_id}", field="agent_id")
    counts = review_rows.visit_counts(db, agent_id, start.isoformat(), end.isoformat())
    visits = {status: counts.get(status, 0) for status in sorted(VISIT_STATUSES)}
    visits["total"] = sum(counts.values())
    by_code: dict[str, Counter] = {}
    for row in review_rows.flag_figures(db, agent_id, start.isoformat(), end.isoformat()):
        figures = by_code.setdefault(row["code"], Counter())
        figures["total"] += 1
        figures[row["status"]] += 1
        if row["disposition"]:
            figures[row["disposition"]] += 1
    flags = [
        {"code": code, **{k: figures[k] for k in ("total", *REVIEW_STATUSES, *DISPOSITIONS)}}
        for code, figures in sorted(by_code.items())
    ]
    return {
        "agent_id": agent_id,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "visits": visits,
        "flags": flags,
        "flag_items": sum(f["total"] for f in flags),
        "breaches": sum(f["breach"] for f in flags),
        "open_items": sum(f[OPEN] + f[ASSIGNED] for f in flags),
    }
