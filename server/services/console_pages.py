"""Use cases of the web console that read several things for one page."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from server.errors import InvalidInput, NotFound
from server.runtime import Caller, Runtime
from server.services import contact_timeline, routes, views
from server.storage import accounts as account_rows

CASE_PAGE_VISITS = 100  # the case page lists this many of the case's visits, oldest first


def business_today(rt: Runtime, now: Any) -> date:
    """Today in the deployment's time zone (the board's default day)."""
    return now.astimezone(ZoneInfo(rt.settings["DEFAULT_TIME_ZONE"])).date()


def case_page(db: sqlite_utils.Database, rt: Runtime, caller: Caller, case_id: int) -> dict:
    """A case with the dispatcher's card, its contact timeline and its visits."""
    case = views.case_view(db, rt, caller, case_id)
    timeline = contact_timeline.case_timeline(db, rt, caller, case_id)
    visits = views.list_visits(db, rt, caller, {"case_id": case_id}, 0, CASE_PAGE_VISITS)
    return {"case": case, "timeline": timeline, "visits": visits["items"]}


def route_map(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    agent_id: int,
    day: date,
    *,
    proposed: bool = False,
) -> dict:
    """An agent's day as a map draws it: the home base, the current route (times and legs, as
    GET .../route answers) or, when `proposed`, a lawful order proposed and not applied (as
    POST .../route-proposal answers), and each visit with its dispatch card (the borrower's
    home)."""
    agent = account_rows.get_user(db, agent_id)
    if agent is None or agent["role"] != "agent":
        raise NotFound("no such agent")
    plan = routes.propose_route if proposed else routes.current_route
    route = plan(db, rt, caller, agent_id, day, {})
    filters = {"agent_id": agent_id, "visit_date": day.isoformat()}
    visits = views.list_visits(db, rt, caller, filters, 0, 500)["items"]
    home = None
    if agent["home_lat"] is not None and agent["home_lon"] is not None:
        home = {"lat": agent["home_lat"], "lon": agent["home_lon"]}
    return {
        "agent_id": agent_id,
        "username": agent["username"],
        "display_name": agent["display_name"],
        "day": day.isoformat(),
        "home": home,
        "route": route,
        "visits": visits,
    }


def assignment_proposal(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    day: date,
    region: str | None,
    agent_ids: list[int] | None,
) -> dict:
    """Who takes the day's open visits (routes.propose_assignment), for a region, some
    agents, or when neither is named every active agent."""
    body: dict = {}
    if region:
        body["region"] = region
    elif agent_ids:
        body["agent_ids"] = agent_ids
    else:
        active = [a["id"] for a in account_rows.list_users(db, role="agent") if a["active"]]
        if not active:
            raise InvalidInput("no active agent to propose for", field="agent_ids")
        body["agent_ids"] = active[:200]
    return routes.propose_assignment(db, rt, caller, day, body)
