"""Reading visits, cases and borrowers as an agent or a dispatcher, each through the policy."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from server.domain.dispatch_rules import case_refusals
from server.errors import NotFound
from server.runtime import Caller, Runtime
from server.services.disclosure import Parts, agent_may_see, serve_cards, window_for
from server.storage import cases as case_rows
from server.storage import sync as sync_rows
from server.storage import visits as visit_rows
from server.storage.connection import transaction

DISPATCH_PURPOSE = "dispatch_planning"


def visit_view(parts: Parts, card: dict[str, Any] | None) -> dict[str, Any]:
    """The visit with its case reference and borrower card. What each role receives of it
    is decided by its response schema (agents: AgentVisitSchema, an allow-list that has no
    planning notes; dispatcher_notes reach an agent only through the card's policy)."""
    visit = dict(parts["visit"])
    visit["case_external_id"] = parts["case"]["external_id"]
    visit["borrower"] = card
    return visit


def agent_day(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, day: date | None
) -> dict[str, Any]:
    """The agent's visits for a day in route order, with cards only while they may be held."""
    principal = caller.principal
    assert principal is not None
    zone = ZoneInfo(principal.time_zone or rt.settings["DEFAULT_TIME_ZONE"])
    day = day or caller.now.astimezone(zone).date()
    with transaction(db):
        rows = visit_rows.agent_day(db, principal.user_id, day.isoformat())
        visible = [p for p in rows if agent_may_see(rt, p, principal.user_id, caller.now)]
        cards = iter(serve_cards(db, rt, caller, visible))
    served = {id(p) for p in visible}
    out = []
    for parts in rows:
        card = next(cards) if id(parts) in served else None
        view = visit_view(parts, card)
        view["card_available_from"] = None if card else window_for(rt, parts).visible_from
        out.append(view)
    return {"date": day, "agent_id": principal.user_id, "generated_at": caller.now, "visits": out}


def visit(db: sqlite_utils.Database, rt: Runtime, caller: Caller, visit_id: int) -> dict[str, Any]:
    """One visit as its reader may see it (agents: their own, inside the card window)."""
    principal = caller.principal
    assert principal is not None
    with transaction(db):
        parts = visit_rows.get_joined(db, visit_id)
        if principal.role == "agent":
            # Not yours, cancelled or outside the card window: the same 404 as no visit at all.
            if parts is None or not agent_may_see(rt, parts, principal.user_id, caller.now):
                raise NotFound("no such visit")
            card = serve_cards(db, rt, caller, [parts])[0]
            return visit_view(parts, card)
        if parts is None:
            raise NotFound("no such visit")
        return _dispatch_views(db, rt, caller, [parts])[0]


def _dispatch_views(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, rows: list[Parts]
) -> list[dict[str, Any]]:
    """Visits as dispatchers see them: the dispatch card and what happened at the door (the
    last outcome, attempts, flag codes; the response layer ledgers them)."""
    flags = sync_rows.flag_codes(db, [p["visit"]["id"] for p in rows])
    cards = serve_cards(db, rt, caller, rows, purpose=DISPATCH_PURPOSE)
    views = []
    for parts, card in zip(rows, cards, strict=True):
        view = visit_view(parts, card)
        view["flags"] = flags[parts["visit"]["id"]]
        views.append(view)
    return views


def list_visits(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    filters: dict[str, Any],
    after: int,
    limit: int,
) -> dict[str, Any]:
    """One page of visits for dispatchers, each with its dispatch card."""
    with transaction(db):
        rows = visit_rows.list_joined(db, filters, after, limit)
        items = _dispatch_views(db, rt, caller, rows)
    return {"items": items, "next_after": items[-1]["id"] if len(items) == limit else None}


# Visits read per query when a whole day is read (the day board).
_DAY_PAGE = 500


def day_visits(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    day: date,
    agent_id: int | None = None,
    *,
    no_agent: bool = False,
) -> list[dict[str, Any]]:
    """Every visit of a day, or of one agent's day, or the day's visits of no agent, each
    with its dispatch card, by id (the console's day board)."""
    filters = {"visit_date": day.isoformat(), "agent_id": agent_id, "no_agent": no_agent}
    rows: list[Parts] = []
    with transaction(db):
        while True:
            after = rows[-1]["visit"]["id"] if rows else 0
            page = visit_rows.list_joined(db, filters, after, _DAY_PAGE)
            rows.extend(page)
            if len(page) < _DAY_PAGE:
                break
        return _dispatch_views(db, rt, caller, rows)


def replan_list(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    filters: dict[str, Any],
    after: int,
    limit: int,
) -> dict[str, Any]:
    """Attempted and missed visits to plan again: the latest of each case that has no later
    visit standing, while the case still takes visits. A page may hold fewer items than
    `limit` and still have a next one (`next_after`)."""
    today = caller.now.astimezone(ZoneInfo(rt.settings["DEFAULT_TIME_ZONE"])).date()
    until = filters.get("until") or today
    since = filters.get("since") or until - timedelta(days=7)
    query = {"since": since.isoformat(), "until": until.isoformat()}
    query["agent_id"] = filters.get("agent_id")
    with transaction(db):
        scanned = visit_rows.replan_candidates(db, query, after, limit)
        rows = [p for p in scanned if not case_refusals(rt.compliance, p["case"])]
        items = _dispatch_views(db, rt, caller, rows)
    return {
        "items": items,
        "next_after": scanned[-1]["visit"]["id"] if len(scanned) == limit else None,
    }


def _agent_subject(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, column: str, subject_id: int
) -> Parts:
    """The agent's visit that currently justifies seeing this case/borrower, or 404."""
    principal = caller.principal
    assert principal is not None
    for parts in visit_rows.agent_visits_for(db, principal.user_id, column, subject_id):
        if agent_may_see(rt, parts, principal.user_id, caller.now):
            return parts
    raise NotFound(f"no such {column}")


def case_view(db: sqlite_utils.Database, rt: Runtime, caller: Caller, case_id: int) -> dict:
    """One case as its reader may see it, with the card that reader may hold."""
    principal = caller.principal
    assert principal is not None
    with transaction(db):
        if principal.role == "agent":
            parts = _agent_subject(db, rt, caller, "case", case_id)
            card = serve_cards(db, rt, caller, [parts])[0]
        else:
            case = case_rows.get_case(db, case_id)
            if case is None:
                raise NotFound("no such case")
            borrower = case_rows.get_borrower(db, case["borrower_id"]) or {}
            parts = {"visit": {"purpose": None}, "case": case, "borrower": borrower}
            card = serve_cards(db, rt, caller, [parts], purpose=DISPATCH_PURPOSE)[0]
    return _case_out(parts["case"], card)


def _case_out(case: dict[str, Any], card: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": case["id"],
        "external_id": case["external_id"],
        "status": case["status"],
        "version": case["version"],
        "borrower": card,
    }


def list_cases(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    filters: dict[str, Any],
    after: int,
    limit: int,
) -> dict[str, Any]:
    """One page of cases for dispatchers, each with its dispatch card."""
    with transaction(db):
        rows = case_rows.list_cases(db, filters, after, limit)
        parts_list = [
            {
                "visit": {"purpose": None},
                "case": c,
                "borrower": case_rows.get_borrower(db, c["borrower_id"]),
            }
            for c in rows
        ]
        cards = serve_cards(db, rt, caller, parts_list, purpose=DISPATCH_PURPOSE)
        items = [_case_out(c, card) for c, card in zip(rows, cards, strict=True)]
    return {"items": items, "next_after": items[-1]["id"] if len(items) == limit else None}


def borrower_view(db: sqlite_utils.Database, rt: Runtime, caller: Caller, borrower_id: int) -> dict:
    """One borrower's card as its reader may see it."""
    principal = caller.principal
    assert principal is not None
    with transaction(db):
        if principal.role == "agent":
            parts = _agent_subject(db, rt, caller, "borrower", borrower_id)
            return serve_cards(db, rt, caller, [parts])[0]
        borrower = case_rows.get_borrower(db, borrower_id)
        if borrower is None:
            raise NotFound("no such borrower")
        case = case_rows.latest_case_for_borrower(db, borrower_id)
        if case is None:
            raise NotFound("no such borrower")
        parts = {"visit": {"purpose": None}, "case": case, "borrower": borrower}
        return serve_cards(db, rt, caller, [parts], purpose=DISPATCH_PURPOSE)[0]
