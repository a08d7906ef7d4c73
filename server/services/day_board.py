"""The dispatcher's day board: each agent with how many visits it has by status and the sync
health of each of its phones; the visits themselves (status, last outcome, flags, each with
its dispatch card) only for the agent the dispatcher opened, or for everyone on request.

Counting visits shows no borrower fact, so the board of 50 agents costs one grouped query
plus the cards of the one agent opened, instead of 1,250 cards built and ledgered."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlite_utils

from server.runtime import Caller, Runtime
from server.services import sync_status, views
from server.storage import accounts as account_rows
from server.storage import visits as visit_rows
from server.storage.connection import transaction

_NO_ORDER = 1 << 30  # visits without a route position come after the ordered ones

# What a board opens besides one agent id: every agent's visits, or those of nobody listed.
OPEN_ALL = "all"
OPEN_OTHERS = "others"
Opened = int | str | None


def _route_key(visit: dict[str, Any]) -> tuple[int, str, int]:
    order = visit["route_order"]
    return (order if order is not None else _NO_ORDER, visit["window_start"] or "", visit["id"])


def _visits(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    day: date,
    opened: Opened,
    listed: set[int],
    counted: set[int | None],
) -> list[dict[str, Any]]:
    """The visits the board shows with their cards: one agent's, the others', or all."""
    if opened == OPEN_ALL:
        return views.day_visits(db, rt, caller, day)
    if isinstance(opened, int):
        return views.day_visits(db, rt, caller, day, opened) if opened in counted else []
    if opened == OPEN_OTHERS:
        shown: list[dict[str, Any]] = []
        for agent_id in sorted(a for a in counted if a is not None and a not in listed):
            shown.extend(views.day_visits(db, rt, caller, day, agent_id))
        if None in counted:
            shown.extend(views.day_visits(db, rt, caller, day, no_agent=True))
        return shown
    return []


def day_board(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, day: date, opened: Opened = None
) -> dict:
    """The board for a day: active agents by username, each with its visit counts by status,
    its devices' health and, when opened, its visits in route order; visits of agents not
    listed are counted (and listed when opened) under `others`."""
    with transaction(db):
        agents = [a for a in account_rows.list_users(db, role="agent") if a["active"]]
        counts = visit_rows.day_counts(db, day.isoformat())
        listed = {a["id"] for a in agents}
        counted = {row["agent_id"] for row in counts}
        visits = _visits(db, rt, caller, day, opened, listed, counted)
        health = sync_status.device_health(db, caller.now, rt.compliance.clock_skew_limit_s)
    by_status: dict[int | None, dict[str, int]] = {}
    for row in counts:
        key = row["agent_id"] if row["agent_id"] in listed else None
        mine = by_status.setdefault(key, {})
        mine[row["status"]] = mine.get(row["status"], 0) + row["n"]
    by_agent: dict[int, list[dict[str, Any]]] = {}
    for visit in visits:
        by_agent.setdefault(visit["agent_id"], []).append(visit)
    devices: dict[int, list[dict[str, Any]]] = {}
    for row in health:
        devices.setdefault(row["agent_id"], []).append(row)
    rows = []
    for agent in sorted(agents, key=lambda a: a["username"]):
        rows.append(
            {
                "agent_id": agent["id"],
                "username": agent["username"],
                "display_name": agent["display_name"],
                "badge_number": agent["badge_number"],
                "home_lat": agent["home_lat"],
                "home_lon": agent["home_lon"],
                "devices": devices.get(agent["id"], []),
                "counts": by_status.get(agent["id"], {}),
                "opened": opened == OPEN_ALL or opened == agent["id"],
                "visits": sorted(by_agent.pop(agent["id"], []), key=_route_key),
            }
        )
    rest = sorted((v for left in by_agent.values() for v in left), key=_route_key)
    return {
        "date": day.isoformat(),
        "opened": None if opened is None else str(opened),
        "agents": rows,
        "others": {"counts": by_status.get(None, {}), "visits": rest},
    }


def agent_of(db: sqlite_utils.Database, visit_id: int) -> Opened:
    """The board to open for a visit: its agent's, or the others' (a conflict is shown on the
    row where the visit is now)."""
    visit = visit_rows.get_visit(db, visit_id)
    if visit is None:
        return None
    return visit["agent_id"] if visit["agent_id"] is not None else OPEN_OTHERS
