"""Loading the demo data set: its cases through the import, its accounts, today's visits."""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import date
from typing import Any

import sqlite_utils

from server.demo import data
from server.demo.logins import DemoLogin
from server.runtime import Caller, Runtime
from server.services import accounts, devices, dispatch, imports
from server.storage import accounts as account_rows
from server.storage import cases as case_rows
from server.storage import visits as visit_rows
from server.storage.connection import transaction


def import_demo_cases(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Import the demo's case rows as any import would (unchanged rows stay unchanged)."""
    return imports.import_cases(db, rt, caller, _jsonl(rows), "jsonl", "demo")


def demo_account_specs(agents: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every demo account to create: the given agents, then the office staff."""
    return [{**agent, "role": "agent"} for agent in agents] + data.demo_staff()


def ensure_demo_accounts(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    wanted: Sequence[dict[str, Any]],
    known: Mapping[str, str],
    *,
    reset: bool = False,
) -> list[DemoLogin]:
    """Create missing demo accounts and keep existing passwords unless reset.

    A new or reset account gets DEMO_PASSWORD when set, else a random password. An existing
    account's password is known when the earlier logins file (known) still matches it, else
    reported unknown. DEMO_PASSWORD is a declared choice: an account without it is set to it.
    """
    fixed = rt.settings["DEMO_PASSWORD"]
    logins = []
    for spec in wanted:
        username = spec["username"]
        existing = account_rows.get_user_by_username(db, username)
        if existing is None:
            password = fixed or _new_password()
            accounts.create_user(db, rt, caller, {**spec, "password": password})
            logins.append(DemoLogin(username, spec["role"], password, "created"))
            continue
        role = existing["role"]
        if reset or (fixed and not _matches(rt, existing, fixed)):
            password = fixed or _new_password()
            with transaction(db):
                account_rows.update_user(
                    db, existing["id"], {"password_hash": rt.passwords.hash(password)}
                )
            logins.append(DemoLogin(username, role, password, "reset"))
            continue
        password = fixed or known.get(username)
        if password is not None and (fixed or _matches(rt, existing, password)):
            logins.append(DemoLogin(username, role, password, "kept"))
        else:
            logins.append(DemoLogin(username, role, None, "unknown"))
    return logins


def register_demo_phones(
    db: sqlite_utils.Database, caller: Caller, logins: Sequence[DemoLogin]
) -> int:
    """Register each demo agent's suggested phone, as an admin would; returns how many were new.

    Automatic enrolment gives phones ids the server mints, so the names the logins file
    suggests exist only because the demo registers them here.
    """
    new = 0
    for login in logins:
        if login.device_id is None or account_rows.get_device(db, login.device_id) is not None:
            continue
        user = account_rows.get_user_by_username(db, login.username)
        if user is not None and user["role"] == "agent":
            devices.register_device(db, caller, user["id"], login.device_id)
            new += 1
    return new


def other_known_logins(
    db: sqlite_utils.Database, rt: Runtime, known: Mapping[str, str], skip: Collection[str]
) -> list[DemoLogin]:
    """Logins of an earlier run outside this one's accounts that still work (kept in the file)."""
    logins = []
    for username, password in known.items():
        existing = None if username in skip else account_rows.get_user_by_username(db, username)
        if existing is not None and _matches(rt, existing, password):
            logins.append(DemoLogin(username, existing["role"], password, "kept"))
    return logins


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


def _new_password() -> str:
    return secrets.token_urlsafe(9)


def _matches(rt: Runtime, user: Mapping[str, Any], password: str) -> bool:
    return rt.passwords.verify(user["password_hash"], password)


def _jsonl(rows: Sequence[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row)
