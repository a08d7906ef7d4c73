"""Routes and assignments: an agent's day on the road, a day's visits spread over a team.

The rules live in server/domain/routing.py; this module reads the agents, visits and the
last reported positions, turns settings and request options into the domain's values, and
writes an accepted assignment. Every distance and time in these answers is derived from
borrowers' homes, so they are for dispatchers only.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlite_utils

from server.clock import to_iso
from server.domain import routing
from server.errors import Conflict, DispatchRefused, InvalidInput, NotFound, VersionConflict
from server.runtime import Caller, Runtime
from server.services.borrower_requests import consents_by_borrower
from server.services.dispatch import plan_check
from server.services.staff_log import log_action
from server.storage import accounts as account_rows
from server.storage import cases as case_rows
from server.storage import sync as sync_rows
from server.storage import visits as visit_rows
from server.storage.connection import transaction
from sync.compliance import InvalidPolicy, OutOfHoursConsent, parse_hhmm
from sync.geo import check_coordinates
from sync.visits import ATTEMPTED, CHANGEABLE_STATUSES, COMPLETED, PLANNED

# A reported visit is done: it is not routed again, and not handed to another agent.
ALREADY_REPORTED = "already_reported"


def _hours(rt: Runtime) -> routing.VisitingHours:
    """The lawful visiting hours of the active compliance profile."""
    return routing.VisitingHours(rt.compliance.visit_window_start, rt.compliance.visit_window_end)


def _travel(rt: Runtime, options: dict[str, Any]) -> routing.TravelModel:
    """Speed and service time from the request, else from the settings."""
    return routing.TravelModel(
        speed_kmh=float(options.get("speed_kmh") or rt.settings["ROUTE_SPEED_KMH"]),
        service_s=int(options.get("service_s", rt.settings["ROUTE_SERVICE_S"])),
        road_factor=rt.settings["ROUTE_ROAD_FACTOR_PCT"] / 100,
    )


def _budget(iterations: int, max_ms: int) -> routing.SolverBudget:
    """How long the solver may search (for one day, or for a team's assignment)."""
    return routing.SolverBudget(iterations=iterations, max_seconds=max_ms / 1000)


def _setting_time(value: Any, key: str, fallback: time) -> time:
    """A time-of-day setting (a time, or "HH:MM" text), or the fallback when unset."""
    if not value:
        return fallback
    if isinstance(value, time):
        return value
    try:
        return parse_hhmm(value, key)
    except InvalidPolicy as exc:
        raise InvalidInput(f"server setting {key}: {exc}", field=key) from None


def _zone(rt: Runtime, agent: dict[str, Any]) -> ZoneInfo:
    return ZoneInfo(agent.get("time_zone") or rt.settings["DEFAULT_TIME_ZONE"])


def _start_point(
    db: sqlite_utils.Database, rt: Runtime, agent: dict[str, Any], kind: str
) -> tuple[routing.Point, dict[str, Any]]:
    """Where the agent sets off: its home base, the depot, or its last reported fix."""
    if kind == "home":
        if agent["home_lat"] is None or agent["home_lon"] is None:
            raise InvalidInput(
                "the agent has no home base to start from", field="start", reason="no_home_base"
            )
        return (agent["home_lat"], agent["home_lon"]), {"kind": kind}
    if kind == "depot":
        return _depot(rt), {"kind": kind}
    fix = sync_rows.latest_report_fix(db, agent["id"])
    if fix is None:
        raise InvalidInput(
            "the agent has reported no position yet", field="start", reason="no_position"
        )
    # The fix was taken at a borrower's door: only when and which visit, never where.
    return (fix["lat"], fix["lon"]), {
        "kind": kind,
        "reported_at": fix["recorded_at"],
        "visit_id": fix["visit_id"],
    }


def _depot(rt: Runtime) -> routing.Point:
    """The configured depot point ("lat,lon")."""
    raw = rt.settings.get("ROUTE_DEPOT")
    if not raw:
        raise InvalidInput("no depot is configured (ROUTE_DEPOT)", field="start", reason="no_depot")
    try:
        lat, lon = (float(part) for part in str(raw).split(","))
        check_coordinates(lat, lon)
    except ValueError:
        raise InvalidInput("ROUTE_DEPOT must be 'lat,lon'", field="ROUTE_DEPOT") from None
    return lat, lon


def _shift(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    agent: dict[str, Any],
    day: date,
    options: dict[str, Any],
) -> tuple[routing.Shift, dict[str, Any]]:
    """The agent's day: start point and time (now, on today), and when it must end."""
    zone = _zone(rt, agent)
    hours = _hours(rt)
    day_start = datetime.combine(
        day, _setting_time(rt.settings["ROUTE_SHIFT_START"], "ROUTE_SHIFT_START", hours.start), zone
    )
    day_end = datetime.combine(
        day, _setting_time(rt.settings["ROUTE_SHIFT_END"], "ROUTE_SHIFT_END", hours.end), zone
    )
    start_time = options.get("start_time")
    if start_time is None:
        today = caller.now.astimezone(zone).date() == day
        start_time = max(caller.now.astimezone(zone), day_start) if today else day_start
    # A day already over (a re-plan late in the evening) is no error: every stop comes back
    # unscheduled with its reason.
    end_time = options.get("end_time") or day_end
    point, info = _start_point(db, rt, agent, options.get("start") or "home")
    shift = routing.Shift(agent["id"], point, start_time, end_time)
    return shift, {**info, "time": start_time, "end_time": end_time}


def _agent(db: sqlite_utils.Database, agent_id: int) -> dict[str, Any]:
    agent = account_rows.get_user(db, agent_id)
    if agent is None or agent["role"] != "agent":
        raise NotFound("no such agent")
    return agent


def _stops(
    db: sqlite_utils.Database, rt: Runtime, rows: list[dict[str, Any]], day: date
) -> list[routing.Stop]:
    """Planned visits as the router sees them: home, time zone, window, and the lawful hours
    of the day, widened where the borrower's recorded out-of-hours consent allows."""
    consents = consents_by_borrower(db, sorted({r["borrower"]["id"] for r in rows}))
    return [_stop(rt, row, day, consents.get(row["borrower"]["id"], ())) for row in rows]


def _stop(
    rt: Runtime, row: dict[str, Any], day: date, consents: tuple[OutOfHoursConsent, ...]
) -> routing.Stop:
    visit, borrower = row["visit"], row["borrower"]
    return routing.Stop(
        visit_id=visit["id"],
        lat=borrower["home_lat"],
        lon=borrower["home_lon"],
        time_zone=borrower["time_zone"],
        window_start=time.fromisoformat(visit["window_start"]) if visit["window_start"] else None,
        window_end=time.fromisoformat(visit["window_end"]) if visit["window_end"] else None,
        lawful=_consented(rt, borrower["time_zone"], day, consents),
    )


def _consented(
    rt: Runtime, time_zone: str, day: date, consents: tuple[OutOfHoursConsent, ...]
) -> routing.VisitingHours | None:
    """The day's lawful hours widened by the consents in force for the whole local day."""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None  # the router reports the unknown zone
    start = datetime.combine(day, time.min, zone)
    end = datetime.combine(day + timedelta(days=1), time.min, zone) - timedelta(seconds=1)
    windows = [(c.window_start, c.window_end) for c in consents if c.in_force(start, end)]
    return routing.consented_hours(_hours(rt), windows) if windows else None


def _planned_day(
    db: sqlite_utils.Database, agent_id: int, day: date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The agent's visits of the day in their order, planned or already reported on: (still
    to do, already reported)."""
    rows = [
        r
        for r in visit_rows.agent_day(db, agent_id, day.isoformat())
        if r["visit"]["status"] in (PLANNED, ATTEMPTED, COMPLETED)
    ]
    reported = sync_rows.reported_visit_ids(db, [r["visit"]["id"] for r in rows])
    return (
        [r for r in rows if r["visit"]["id"] not in reported],
        [r for r in rows if r["visit"]["id"] in reported],
    )


def _stops_out(proposal: routing.RouteProposal) -> list[dict[str, Any]]:
    return [
        {
            "visit_id": s.visit_id,
            "arrival": s.arrival,
            "departure": s.departure,
            "wait_s": s.wait_s,
            "travel_s": s.travel_s,
            "leg_distance_m": s.leg_distance_m,
            "window_violation_s": s.window_violation_s,
            "problems": list(s.problems),
        }
        for s in proposal.stops
    ]


def _unscheduled_out(
    items: tuple[routing.UnscheduledStop, ...], versions: dict[int, int]
) -> list[dict[str, Any]]:
    return [
        {"visit_id": u.visit_id, "version": versions[u.visit_id], "reason": u.reason} for u in items
    ]


def _route_out(
    proposal: routing.RouteProposal,
    order: list[int],
    versions: dict[int, int],
    done: list[int],
    start: dict[str, Any],
    travel: routing.TravelModel,
) -> dict[str, Any]:
    return {
        "order": [{"id": v, "version": versions[v]} for v in order],
        "stops": _stops_out(proposal),
        "unscheduled": _unscheduled_out(proposal.unscheduled, versions),
        "done": done,
        "unlocated": [u.visit_id for u in proposal.unscheduled if u.reason == routing.NO_LOCATION],
        "total_distance_m": proposal.total_distance_m,
        "total_duration_s": proposal.total_duration_s,
        "late_stops": proposal.late_stops,
        "start": start,
        "speed_kmh": travel.speed_kmh,
        "service_s": travel.service_s,
    }


def _route(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    agent_id: int,
    day: date,
    options: dict[str, Any],
    *,
    propose: bool,
) -> dict[str, Any]:
    agent = _agent(db, agent_id)
    shift, start = _shift(db, rt, caller, agent, day, options)
    travel = _travel(rt, options)
    todo, reported = _planned_day(db, agent_id, day)
    versions = {r["visit"]["id"]: r["visit"]["version"] for r in todo + reported}
    done = [r["visit"]["id"] for r in reported]
    stops = _stops(db, rt, todo, day)
    if propose:
        proposal = routing.propose_route(
            shift,
            stops,
            day,
            _hours(rt),
            travel,
            _budget(rt.settings["ROUTE_SOLVER_ITERATIONS"], rt.settings["ROUTE_SOLVER_MAX_MS"]),
        )
        order = done + list(proposal.order)
    else:
        proposal = routing.evaluate_order(shift, stops, day, _hours(rt), travel)
        order = done + [s.visit_id for s in stops]
    return _route_out(proposal, order, versions, done, start, travel)


def current_route(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    agent_id: int,
    day: date,
    options: dict[str, Any],
) -> dict:
    """Times and distances of the day's remaining visits in their current order."""
    return _route(db, rt, caller, agent_id, day, options, propose=False)


def propose_route(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    agent_id: int,
    day: date,
    options: dict[str, Any],
) -> dict:
    """A lawful order of the day's remaining visits (not applied: PUT its `order` to use it)."""
    return _route(db, rt, caller, agent_id, day, options, propose=True)


def _team(db: sqlite_utils.Database, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The active agents named by id, or those of a region (the team)."""
    agents = [u for u in account_rows.list_users(db, "agent") if u["active"]]
    if body.get("agent_ids"):
        wanted = list(dict.fromkeys(body["agent_ids"]))
        by_id = {a["id"]: a for a in agents}
        unknown = [i for i in wanted if i not in by_id]
        if unknown:
            raise InvalidInput("no active agent with these ids", field="agent_ids", ids=unknown)
        return [by_id[i] for i in wanted]
    if body.get("region"):
        team = [a for a in agents if a["region"] == body["region"]]
        if not team:
            raise InvalidInput("no active agent in this region", field="region")
        return team
    raise InvalidInput("name the team: agent_ids or region", field="agent_ids")


def _free_visits(
    db: sqlite_utils.Database, day: date, visit_ids: list[int] | None
) -> list[dict[str, Any]]:
    """The visits to hand out: the ones named, or the day's planned visits nobody holds."""
    if not visit_ids:
        return visit_rows.unassigned_day(db, day.isoformat())
    wanted = list(dict.fromkeys(visit_ids))
    rows = {r["visit"]["id"]: r for r in visit_rows.joined_by_ids(db, wanted)}
    bad = [
        i
        for i in wanted
        if i not in rows
        or rows[i]["visit"]["status"] != "planned"
        or rows[i]["visit"]["visit_date"] != day.isoformat()
    ]
    if bad:
        raise InvalidInput(
            "every visit must exist, be planned and be on this day", field="visit_ids", ids=bad
        )
    return [rows[i] for i in wanted]


def propose_assignment(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, day: date, body: dict[str, Any]
) -> dict:
    """Spread visits over a team, balanced and lawful; agents keep what they already have."""
    travel = _travel(rt, body)
    shifts: list[routing.Shift] = []
    starts: dict[int, dict[str, Any]] = {}
    skipped: list[dict[str, Any]] = []
    for agent in _team(db, body):
        try:
            shift, starts[agent["id"]] = _shift(db, rt, caller, agent, day, body)
        except InvalidInput as exc:
            if exc.field != "start":
                raise
            skipped.append({"agent_id": agent["id"], "reason": exc.details["reason"]})
            continue
        shifts.append(shift)
    free = _free_visits(db, day, body.get("visit_ids"))
    free_ids = {r["visit"]["id"] for r in free}
    rows = list(free)
    pinned: dict[int, int] = {}
    done: dict[int, list[int]] = {}
    for shift in shifts:
        todo, reported = _planned_day(db, shift.agent_id, day)
        done[shift.agent_id] = [r["visit"]["id"] for r in reported]
        for row in todo:
            if row["visit"]["id"] not in free_ids:
                pinned[row["visit"]["id"]] = shift.agent_id
                rows.append(row)
    reported_ids = sync_rows.reported_visit_ids(db, sorted(free_ids))
    versions = {r["visit"]["id"]: r["visit"]["version"] for r in rows}
    stops = _stops(db, rt, [r for r in rows if r["visit"]["id"] not in reported_ids], day)
    proposal = routing.propose_assignment(
        shifts,
        stops,
        day,
        _hours(rt),
        travel,
        _budget(rt.settings["ROUTE_ASSIGN_ITERATIONS"], rt.settings["ROUTE_ASSIGN_MAX_MS"]),
        pinned=pinned,
        balance_slack=rt.settings["ROUTE_BALANCE_SLACK"],
    )
    return _assignment_out(
        day, proposal, versions, starts, done, skipped, sorted(reported_ids), travel
    )


def _assignment_out(
    day: date,
    proposal: routing.AssignmentProposal,
    versions: dict[int, int],
    starts: dict[int, dict[str, Any]],
    done: dict[int, list[int]],
    skipped: list[dict[str, Any]],
    reported: list[int],
    travel: routing.TravelModel,
) -> dict[str, Any]:
    agents, accept = [], []
    for item in proposal.routes:
        order = list(item.route.order)
        first = len(done[item.agent_id]) + 1
        accept += [
            {"id": v, "version": versions[v], "agent_id": item.agent_id, "route_order": first + i}
            for i, v in enumerate(order)
        ]
        agents.append(
            {
                "agent_id": item.agent_id,
                "start": starts[item.agent_id],
                "order": [{"id": v, "version": versions[v]} for v in order],
                "new_visits": list(item.new_visits),
                "stops": _stops_out(item.route),
                "unscheduled": _unscheduled_out(item.route.unscheduled, versions),
                "total_distance_m": item.route.total_distance_m,
                "total_duration_s": item.route.total_duration_s,
            }
        )
    unassigned = _unscheduled_out(proposal.unassigned, versions) + [
        {"visit_id": v, "version": versions[v], "reason": ALREADY_REPORTED} for v in reported
    ]
    return {
        "day": day,
        "agents": agents,
        "unassigned": unassigned,
        "skipped_agents": skipped,
        "capacity": proposal.capacity,
        "total_distance_m": sum(a["total_distance_m"] for a in agents),
        "speed_kmh": travel.speed_kmh,
        "service_s": travel.service_s,
        "accept": {"visits": accept},
    }


def accept_assignment(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, day: date, items: list[dict]
) -> dict:
    """Apply an assignment as proposed or edited: all visits or none, each at its version."""
    ids = [item["id"] for item in items]
    if len(set(ids)) != len(ids):
        raise InvalidInput("each visit may appear once", field="visits")
    now = to_iso(caller.now)
    by = caller.principal.user_id if caller.principal else None
    warnings: list[dict[str, Any]] = []
    with transaction(db):
        for item in items:
            warnings += _reassign(db, rt, item, day, now, by)
        log_action(
            db,
            caller,
            "assignment_accepted",
            "day",
            day.isoformat(),
            {"visits": ids, "agents": sorted({item["agent_id"] for item in items})},
        )
        visits = [visit_rows.get_visit(db, visit_id) for visit_id in ids]
    return {"visits": visits, "warnings": warnings}


def _reassign(
    db: sqlite_utils.Database,
    rt: Runtime,
    item: dict[str, Any],
    day: date,
    now: str,
    by: int | None,
) -> list[dict[str, Any]]:
    """Give one visit its agent and position; the caller holds the transaction."""
    before = visit_rows.get_visit(db, item["id"])
    if before is None or before["visit_date"] != day.isoformat():
        raise InvalidInput("no such visit on this day", field="visits", visit_id=item["id"])
    if before["version"] != item["version"]:
        raise VersionConflict(
            f"visit {before['id']} is at version {before['version']}, not {item['version']}",
            field="version",
            visit_id=before["id"],
            current_version=before["version"],
        )
    if before["status"] not in CHANGEABLE_STATUSES:
        raise Conflict(f"a {before['status']} visit cannot be assigned", field="status")
    agent = account_rows.get_user(db, item["agent_id"])
    if agent is None or agent["role"] != "agent" or not agent["active"]:
        raise InvalidInput("no active agent with this id", field="agent_id", visit_id=before["id"])
    case = case_rows.get_case(db, before["case_id"]) or {}
    plan = {**before, "agent_id": item["agent_id"]}
    # The same rules as planning one visit: the borrower's consents and requests included.
    check = plan_check(
        db, rt, case, plan, visit_rows.case_visit_dates(db, before["case_id"], before["id"])
    )
    if check.refusals:
        first = check.refusals[0]
        raise DispatchRefused(first.message, field=first.field, visit_id=before["id"])
    changes: dict[str, Any] = {"agent_id": item["agent_id"], "updated_at": now, "updated_by": by}
    if "route_order" in item or before["agent_id"] != item["agent_id"]:
        changes["route_order"] = item.get("route_order")
    visit_rows.update_visit(db, before["id"], before["version"], changes)
    visit_rows.record_history(db, visit_rows.get_visit(db, before["id"]) or {}, now, by)
    return [
        {"visit_id": before["id"], "code": w.code, "message": w.message, "field": w.field}
        for w in check.warnings
    ]
