"""Loading the demo data set: its cases through the import, its accounts, today's visits."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import sqlite_utils

from server.demo import data
from server.runtime import Caller, Runtime
from server.services import accounts, dispatch, imports
from server.storage import accounts as account_rows
from server.storage import cases as case_rows
from server.storage import visits as visit_rows
from server.storage.connection import transaction


def import_demo_cases(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Import the demo's case rows as any import would (unchanged rows stay unchanged)."""
    return imports.import_cases(db, rt, caller, _jsonl(rows), "jsonl", "demo")


def ensure_demo_accounts(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, agents: Sequence[dict[str, Any]]
) -> dict[str, str]:
    """Create missing demo accounts; (re)set every demo password so the printout works."""
    fixed = rt.settings.get("DEMO_PASSWORD")
    wanted = [{**a, "role": "agent"} for a in agents] + data.demo_staff()
    passwords: dict[str, str] = {}
    for spec in wanted:
        password = fixed or secrets.token_urlsafe(9)
        passwords[spec["username"]] = password
        existing = account_rows.get_user_by_username(db, spec["username"])
        if existing is None:
            accounts.create_user(db, rt, caller, {**spec, "password": password})
        else:
            with transaction(db):
                account_rows.update_user(
                    db, existing["id"], {"password_hash": rt.passwords.hash(password)}
                )
    return passwords


def plan_demo_day(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    rows: Sequence[dict[str, Any]],
    agents: Sequence[dict[str, Any]],
    day: date,
    per_agent: int,
) -> int:
    """Plan the day for every demo agent who has none yet; returns the visits created."""
    plan = data.demo_visit_plan(rows, agents, day, per_agent=per_agent)
    ids = {u["username"]: u["id"] for u in account_rows.list_users(db, "agent")}
    busy = {a for a in ids.values() if visit_rows.planned_day(db, a, day.isoformat())}
    items = []
    for item in plan:
        agent_id = ids[item["agent_username"]]
        if agent_id in busy:
            continue
        case = case_rows.find_case_by_external_id(db, item["case_external_id"])
        notice = {"kind": item["notice_kind"]} if item["notice_kind"] else None
        items.append(
            {
                "case_id": case["id"],
                "agent_id": agent_id,
                "visit_date": day,
                "window_start": item["window_start"],
                "window_end": item["window_end"],
                "purpose": item["purpose"],
                "notes": item["notes"],
                "notice": notice,
            }
        )
    if not items:
        return 0
    result = dispatch.create_visits(db, rt, caller, items)
    return result["created"]


def _jsonl(rows: Sequence[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row)
