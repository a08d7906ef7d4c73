"""A case's status and flags, changed through the API, an import or a borrower's request, and
what follows: when the case stops taking visits (sync.cards.case_stops_visits), its planned
visits are cancelled and every card of it is ordered off every phone that holds one, in the
same transaction; each device receives the order on its next pull and confirms it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from server.clock import to_iso
from server.domain.dispatch_rules import stop_rule
from server.errors import Conflict, InvalidInput, NotFound, VersionConflict
from server.runtime import Caller, Runtime
from server.services.staff_log import log_action
from server.storage import borrower_requests as request_rows
from server.storage import cases as case_rows
from server.storage import sync as sync_rows
from server.storage import visits as visit_rows
from server.storage.connection import transaction
from server.timing import phase
from sync.cards import CASE_CLOSED, case_stops_visits
from sync.cases import CASE_FLAGS, CLOSED_STATUSES, DO_NOT_VISIT, REQUEST_DO_NOT_VISIT
from sync.visits import CANCELLED, PLANNED

CANCEL_REASON = "The case stopped taking visits."
SOURCES = ("api", "import", "borrower_request", "evidence_pack")


@dataclass
class CaseChange:
    """What one change did: the case after it, what changed, what it stopped."""

    case: dict[str, Any]
    changed: list[str] = field(default_factory=list)
    stops: tuple[str, ...] = ()
    visits_cancelled: int = 0
    purges_ordered: int = 0


def change_case(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    case_id: int,
    expected: int,
    body: Mapping[str, Any],
) -> dict[str, Any]:
    """Change a case's status or flags at the version the caller saw, with a reason."""
    with transaction(db):
        change = _change_at_version(db, rt, caller, case_id, expected, body)
        stop_visits(db, rt, caller, [change])
    return _answer([change])[0]


def change_cases(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, items: list[Mapping[str, Any]]
) -> dict[str, Any]:
    """Change many cases in one transaction, each applied or refused on its own; every
    purge order they call for is issued in that same transaction."""
    results: list[dict[str, Any]] = []
    with phase("case_changes"), transaction(db):
        changes: list[CaseChange] = []
        for index, item in enumerate(items):
            try:
                change = _change_at_version(db, rt, caller, item["case_id"], item["version"], item)
            except (VersionConflict, Conflict, NotFound, InvalidInput) as exc:
                error = {
                    "code": exc.code,
                    "message": exc.message,
                    "field": exc.field,
                    "details": exc.details,
                }
                results.append(
                    {
                        "index": index,
                        "case_id": item["case_id"],
                        "status": "refused",
                        "error": error,
                    }
                )
                continue
            changes.append(change)
            results.append({"index": index, "status": "changed" if change.changed else "unchanged"})
        stop_visits(db, rt, caller, changes)
    answers = iter(_answer(changes))
    for result in results:
        if result["status"] != "refused":
            result.update(next(answers), error=None)
    return {
        "changed": sum(1 for r in results if r["status"] == "changed"),
        "refused": sum(1 for r in results if r["status"] == "refused"),
        "visits_cancelled": sum(r.get("visits_cancelled", 0) for r in results),
        "purges_ordered": sum(r.get("purges_ordered", 0) for r in results),
        "results": results,
    }


def _change_at_version(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    case_id: int,
    expected: int,
    body: Mapping[str, Any],
) -> CaseChange:
    before = case_rows.get_case(db, case_id)
    if before is None:
        raise NotFound("no such case", case_id=case_id)
    if before["version"] != expected:
        raise _stale(before, expected)
    return apply_change(
        db,
        rt,
        caller,
        before,
        status=body.get("status"),
        flags=body.get("flags") or {},
        reason=body["reason"],
        source="api",
        expected=expected,
    )


def _stale(case: Mapping[str, Any], expected: int) -> VersionConflict:
    return VersionConflict(
        f"case {case['id']} is at version {case['version']}, not {expected}",
        field="version",
        case_id=case["id"],
        current_version=case["version"],
    )


def apply_change(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    before: Mapping[str, Any],
    *,
    status: str | None,
    flags: Mapping[str, bool | None],
    reason: str | None,
    source: str,
    data: Mapping[str, Any] | None = None,
    expected: int | None = None,
) -> CaseChange:
    """Set the case's status and flags (a flag given as None keeps its value) and any other
    `data` columns in one new version; keep the change in the case history and the staff
    log. Stopping its visits is the caller's next step (stop_visits), so many changes stop
    theirs together. The caller holds the transaction.

    A borrower's own do-not-visit request holds the flag: the API refuses to lift it while
    the request stands, an import leaves it set."""
    target_status = status or before["status"]
    target = {flag: bool(before[flag]) for flag in CASE_FLAGS}
    target.update({flag: bool(value) for flag, value in flags.items() if value is not None})
    if before[DO_NOT_VISIT] and not target[DO_NOT_VISIT]:
        standing = request_rows.list_requests(
            db, before["borrower_id"], REQUEST_DO_NOT_VISIT, active_only=True
        )
        if standing and source == "api":
            raise Conflict(
                f"the borrower asked not to be visited (request {standing[0]['id']}): "
                "withdraw that request first",
                field="flags.do_not_visit",
                request_id=standing[0]["id"],
            )
        if standing:
            target[DO_NOT_VISIT] = True
    changed = ["status"] if target_status != before["status"] else []
    changed += [f"flags.{f}" for f in CASE_FLAGS if target[f] != bool(before[f])]
    columns = dict(data or {})
    if changed:
        columns.update({flag: int(value) for flag, value in target.items()})
        columns["status"] = target_status
        columns["closed_at"] = _closed_at(before, target_status, to_iso(caller.now))
    if not columns:
        return CaseChange(case=dict(before))
    now = to_iso(caller.now)
    if not case_rows.update_case(db, before["id"], columns, now, expected):
        raise _stale(case_rows.get_case(db, before["id"]) or before, expected or 0)
    after = case_rows.get_case(db, before["id"]) or {}
    change = CaseChange(case=after, changed=changed)
    if not changed:
        return change
    by = caller.principal.user_id if caller.principal else None
    case_rows.insert_history(
        db,
        [
            {
                "case_id": after["id"],
                "version": after["version"],
                "status": after["status"],
                "flags": json.dumps([f for f in CASE_FLAGS if after[f]]),
                "reason": reason,
                "source": source,
                "changed_at": now,
                "changed_by": by,
            }
        ],
    )
    # Names of what changed, never the values or the reason: privacy officers and admins
    # read the staff log; the case history keeps the rest.
    log_action(
        db,
        caller,
        "case_changed",
        "case",
        after["id"],
        {
            "changed": changed,
            "source": source,
            "reason_given": bool(reason),
            "from_version": before["version"],
        },
    )
    change.stops = case_stops_visits(
        after["status"],
        {f for f in CASE_FLAGS if after[f]},
        dispute_stops_visits=rt.compliance.dispute_stops_visits,
    )
    return change


def _closed_at(before: Mapping[str, Any], status: str, now: str) -> str | None:
    """When the case closed: kept while it stays closed (the retention clock runs from it)."""
    if status not in CLOSED_STATUSES:
        return None
    return before["closed_at"] if before["status"] in CLOSED_STATUSES else now


def stop_visits(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, changes: list[CaseChange]
) -> None:
    """For every change that left its case taking no visits: cancel its planned visits and
    order every card of it purged on every device holding one (reason case_closed). Counts
    go on the changes. The caller holds the transaction."""
    stopped = {c.case["id"]: c for c in changes if c.changed and c.stops}
    if not stopped:
        return
    now = to_iso(caller.now)
    by = caller.principal.user_id if caller.principal else None
    planned = visit_rows.planned_of_cases(db, sorted(stopped))
    cancelled = visit_rows.set_status_where(
        db,
        [visit_id for visit_id, _ in planned],
        PLANNED,
        {"status": CANCELLED, "cancel_reason": CANCEL_REASON, "updated_at": now, "updated_by": by},
    )
    visit_rows.record_history_of(db, cancelled, now, by)
    case_of = dict(planned)
    for visit_id in cancelled:
        stopped[case_of[visit_id]].visits_cancelled += 1
    for case_id in sync_rows.order_case_purges(db, sorted(stopped), CASE_CLOSED, now):
        stopped[case_id].purges_ordered += 1


def _answer(changes: list[CaseChange]) -> list[dict[str, Any]]:
    """Each change as answered. Its flags, and what changed, are the card fact case_flags:
    the response layer sends them to readers whose policy gives it, with a ledger entry, and
    leaves them out for the others."""
    answers = []
    for change in changes:
        case = change.case
        answers.append(
            {
                "case_id": case["id"],
                "case": {
                    "id": case["id"],
                    "external_id": case["external_id"],
                    "status": case["status"],
                    "closed_at": case["closed_at"],
                    "version": case["version"],
                    "flags": {flag: bool(case[flag]) for flag in CASE_FLAGS},
                },
                "changed": change.changed,
                "stops_visits": [stop_rule(reason) for reason in change.stops],
                "visits_cancelled": change.visits_cancelled,
                "purges_ordered": change.purges_ordered,
            }
        )
    return answers
