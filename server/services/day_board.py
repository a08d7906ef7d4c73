"""The dispatcher's day board: each agent with the day's visits in route order (status, last
outcome, flags) and the sync health of each of the agent's phones."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlite_utils

from server.runtime import Caller, Runtime
from server.services import sync_status, views
from server.storage import accounts as account_rows
from server.storage.connection import transaction

_NO_ORDER = 1 << 30  # visits without a route position come after the ordered ones


def _route_key(visit: dict[str, Any]) -> tuple[int, str, int]:
    order = visit["route_order"]
    return (order if order is not None else _NO_ORDER, visit["window_start"] or "", visit["id"])


def day_board(db: sqlite_utils.Database, rt: Runtime, caller: Caller, day: date) -> dict:
    """The board for a day: active agents by username, each with its visits in route order
    and its devices' health; visits of agents not listed go under `unassigned`."""
    with transaction(db):
        agents = [a for a in account_rows.list_users(db, role="agent") if a["active"]]
        visits = views.day_visits(db, rt, caller, day)
        health = sync_status.device_health(db, caller.now, rt.compliance.clock_skew_limit_s)
    by_agent: dict[int, list[dict[str, Any]]] = {}
    for visit in visits:
        by_agent.setdefault(visit["agent_id"], []).append(visit)
    devices: dict[int, list[dict[str, Any]]] = {}
    for row in health:
        devices.setdefault(row["agent_id"], []).append(row)
    rows = []
    for agent in sorted(agents, key=lambda a: a["username"]):
        mine = sorted(by_agent.pop(agent["id"], []), key=_route_key)
        rows.append(
            {
                "agent_id": agent["id"],
                "username": agent["username"],
                "display_name": agent["display_name"],
                "badge_number": agent["badge_number"],
                "home_lat": agent["home_lat"],
                "home_lon": agent["home_lon"],
                "devices": devices.get(agent["id"], []),
                "visits": mine,
            }
        )
    rest = sorted((v for left in by_agent.values() for v in left), key=_route_key)
    return {"date": day.isoformat(), "agents": rows, "unassigned": rest}
