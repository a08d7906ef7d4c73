"""Planning visits: create, change, reassign, cancel, order a day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlite_utils

from server.clock import to_iso
from server.domain.dispatch_rules import Finding, PlanCheck, check_plan
from server.errors import Conflict, DispatchRefused, InvalidInput, NotFound, VersionConflict
from server.runtime import Caller, Runtime
from server.services.borrower_requests import planning_facts
from server.services.staff_log import log_action
from server.storage import accounts as account_rows
from server.storage import cases as case_rows
from server.storage import visits as visit_rows
from server.storage.connection import transaction
from sync.visits import CHANGEABLE_STATUSES

_CHANGEABLE = (
    "agent_id",
    "visit_date",
    "window_start",
    "window_end",
    "purpose",
    "notes",
    "notice_kind",
    "notice_given_at",
    "notice_note",
)


def _findings(items: tuple[Finding, ...]) -> list[dict[str, Any]]:
    return [{"code": f.code, "message": f.message, "field": f.field} for f in items]


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    """API shape (notice object, dates) -> visit columns."""
    flat = {k: v for k, v in data.items() if k not in ("notice", "version", "visit_date")}
    if "visit_date" in data:
        flat["visit_date"] = data["visit_date"].isoformat()
    if "notice" in data:
        notice = data["notice"] or {}
        flat["notice_kind"] = notice.get("kind")
        given = notice.get("given_at")
        flat["notice_given_at"] = to_iso(given) if isinstance(given, datetime) else given
        flat["notice_note"] = notice.get("note")
    return flat


def _require_agent(db: sqlite_utils.Database, agent_id: int) -> None:
    user = account_rows.get_user(db, agent_id)
    if user is None or user["role"] != "agent" or not user["active"]:
        raise InvalidInput("no active agent with this id", field="agent_id")


def plan_check(
    db: sqlite_utils.Database,
    rt: Runtime,
    case: dict[str, Any],
    plan: dict[str, Any],
    other_dates: list[str],
) -> PlanCheck:
    """The dispatch rules, with what the borrower asked for (consents, do-not-visit)."""
    borrower = case_rows.get_borrower(db, case["borrower_id"]) or {}
    asked = planning_facts(db, case["borrower_id"])
    return check_plan(
        rt.compliance,
        case,
        plan,
        other_dates,
        consents=asked.consents,
        time_zone=borrower.get("time_zone") or rt.settings["DEFAULT_TIME_ZONE"],
        do_not_visit_request=asked.do_not_visit_request,
    )


def _plan_one(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, data: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Insert one visit after checking it; the caller holds the transaction."""
    case = case_rows.get_case(db, data["case_id"])
    if case is None:
        raise InvalidInput("no such case", field="case_id")
    if data.get("agent_id") is not None:
        _require_agent(db, data["agent_id"])
    plan = _flatten(data)
    check = plan_check(db, rt, case, plan, visit_rows.case_visit_dates(db, case["id"], None))
    if check.refusals:
        first = check.refusals[0]
        raise DispatchRefused(
            first.message,
            field=first.field,
            refusals=_findings(check.refusals),
            warnings=_findings(check.warnings),
        )
    now = to_iso(caller.now)
    by = caller.principal.user_id if caller.principal else None
    visit_id = visit_rows.insert_visit(
        db,
        {
            **plan,
            "status": "planned",
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "updated_by": by,
        },
    )
    stored = visit_rows.get_visit(db, visit_id) or {}
    visit_rows.record_history(db, stored, now, by)
    warnings = _findings(check.warnings)
    log_action(
        db,
        caller,
        "visit_created",
        "visit",
        visit_id,
        {
            "case_id": case["id"],
            "agent_id": stored.get("agent_id"),
            "visit_date": stored["visit_date"],
            "warnings": [w["code"] for w in warnings],
        },
    )
    return stored, warnings


def create_visit(db: sqlite_utils.Database, rt: Runtime, caller: Caller, data: dict) -> dict:
    """Plan one visit after the dispatch rules; warnings come back with it."""
    with transaction(db):
        visit, warnings = _plan_one(db, rt, caller, data)
    return {"visit": visit, "warnings": warnings}


def create_visits(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, items: list[dict]
) -> dict:
    """Plan many visits; each is created or refused on its own, all in one transaction."""
    results = []
    with transaction(db):
        for index, data in enumerate(items):
            try:
                visit, warnings = _plan_one(db, rt, caller, data)
                results.append(
                    {
                        "index": index,
                        "status": "created",
                        "visit": visit,
                        "warnings": warnings,
                        "error": None,
                    }
                )
            except (DispatchRefused, InvalidInput) as exc:
                results.append(
                    {
                        "index": index,
                        "status": "refused",
                        "visit": None,
                        "warnings": exc.details.get("warnings", []),
                        "error": {
                            "code": exc.code,
                            "message": exc.message,
                            "field": exc.field,
                            "details": exc.details,
                        },
                    }
                )
    created = sum(1 for r in results if r["status"] == "created")
    return {"created": created, "refused": len(results) - created, "results": results}


def _current(db: sqlite_utils.Database, visit_id: int) -> dict[str, Any]:
    visit = visit_rows.get_visit(db, visit_id)
    if visit is None:
        raise NotFound("no such visit")
    return visit


def _stale(visit: dict[str, Any], expected: int) -> VersionConflict:
    return VersionConflict(
        f"visit {visit['id']} is at version {visit['version']}, not {expected}",
        field="version",
        current_version=visit["version"],
    )


def update_visit(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    visit_id: int,
    expected: int,
    data: dict[str, Any],
) -> dict[str, Any]:
    """Change a visit; reassignment tells the old agent's devices to purge the card."""
    changes = _flatten(data)
    unknown = set(changes) - set(_CHANGEABLE)
    if unknown:
        raise InvalidInput(f"cannot change {sorted(unknown)}", field=sorted(unknown)[0])
    now = to_iso(caller.now)
    by = caller.principal.user_id if caller.principal else None
    with transaction(db):
        before = _current(db, visit_id)
        if before["version"] != expected:
            raise _stale(before, expected)
        if before["status"] not in CHANGEABLE_STATUSES:
            raise Conflict(f"a {before['status']} visit cannot be changed", field="status")
        if changes.get("agent_id") is not None:
            _require_agent(db, changes["agent_id"])
        plan = {**before, **changes}
        case = case_rows.get_case(db, before["case_id"]) or {}
        check = plan_check(
            db, rt, case, plan, visit_rows.case_visit_dates(db, before["case_id"], visit_id)
        )
        if check.refusals:
            first = check.refusals[0]
            raise DispatchRefused(
                first.message, field=first.field, refusals=_findings(check.refusals)
            )
        if before["agent_id"] != plan["agent_id"] or before["visit_date"] != plan["visit_date"]:
            changes["route_order"] = None  # a new day or agent: the old position means nothing
        if not visit_rows.update_visit(
            db, visit_id, expected, {**changes, "updated_at": now, "updated_by": by}
        ):
            raise _stale(_current(db, visit_id), expected)
        after = _current(db, visit_id)
        visit_rows.record_history(db, after, now, by)
        log_action(
            db,
            caller,
            "visit_updated",
            "visit",
            visit_id,
            {
                "changed": sorted(changes),
                "from_version": expected,
                "agent_id": [before["agent_id"], after["agent_id"]],
            },
        )
    return {"visit": after, "warnings": _findings(check.warnings)}


def cancel_visit(
    db: sqlite_utils.Database, caller: Caller, visit_id: int, expected: int, reason: str | None
) -> dict[str, Any]:
    """Cancel a planned visit at the expected version; its card leaves the phone."""
    now = to_iso(caller.now)
    by = caller.principal.user_id if caller.principal else None
    with transaction(db):
        before = _current(db, visit_id)
        if before["version"] != expected:
            raise _stale(before, expected)
        if before["status"] not in CHANGEABLE_STATUSES:
            raise Conflict(f"a {before['status']} visit cannot be cancelled", field="status")
        visit_rows.update_visit(
            db,
            visit_id,
            expected,
            {"status": "cancelled", "cancel_reason": reason, "updated_at": now, "updated_by": by},
        )
        after = _current(db, visit_id)
        visit_rows.record_history(db, after, now, by)
        # The reason is free text about the borrower ("borrower paid"): it stays on the visit,
        # where dispatchers read it (ledgered); the staff log that privacy officers and
        # admins read says only that one was given.
        log_action(db, caller, "visit_cancelled", "visit", visit_id, {"reason_given": bool(reason)})
    return after


def set_day_order(
    db: sqlite_utils.Database,
    caller: Caller,
    agent_id: int,
    day: date,
    ordered: list[dict[str, int]],
) -> list[dict[str, Any]]:
    """Set the route order of an agent's planned visits; every version must be current."""
    now = to_iso(caller.now)
    by = caller.principal.user_id if caller.principal else None
    with transaction(db):
        planned = {v["id"]: v for v in visit_rows.planned_day(db, agent_id, day.isoformat())}
        given = [item["id"] for item in ordered]
        if len(set(given)) != len(given) or set(given) != set(planned):
            raise InvalidInput(
                "the order must list every planned visit of this agent and day exactly once",
                field="visits",
                expected=sorted(planned),
                given=given,
            )
        for position, item in enumerate(ordered, start=1):
            current = planned[item["id"]]
            if current["version"] != item["version"]:
                raise _stale(current, item["version"])
            if current["route_order"] == position:
                continue
            visit_rows.update_visit(
                db,
                item["id"],
                item["version"],
                {"route_order": position, "updated_at": now, "updated_by": by},
            )
            after = _current(db, item["id"])
            visit_rows.record_history(db, after, now, by)
        log_action(
            db,
            caller,
            "day_ordered",
            "agent_day",
            f"{agent_id}/{day.isoformat()}",
            {"order": given},
        )
        return visit_rows.planned_day(db, agent_id, day.isoformat())
