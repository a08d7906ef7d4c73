"""A borrower's requests, recorded as what they are: do-not-visit, do-not-contact per channel,
preferred contact times and out-of-hours consent, each with its source, who took it and when.

What follows from them: a do-not-visit request marks every case of the borrower, which stops
their visits (services/case_lifecycle.py); a consent lets planning and the compliance rules
accept the hours it covers, and its withdrawal cancels the planned visits that relied on it
and orders their cards off the phones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import sqlite_utils

from server.clock import parse_iso, to_iso
from server.domain.dispatch_rules import needs_consent, window_consented
from server.errors import Conflict, InvalidInput, NotFound
from server.runtime import Caller, Runtime
from server.services.case_lifecycle import apply_change, stop_visits
from server.services.staff_log import log_action
from server.storage import borrower_requests as request_rows
from server.storage import cases as case_rows
from server.storage import sync as sync_rows
from server.storage import visits as visit_rows
from server.storage.connection import transaction
from sync.cards import CANCELLED
from sync.cases import DO_NOT_VISIT, REQUEST_DO_NOT_VISIT, REQUEST_OUT_OF_HOURS_CONSENT
from sync.compliance import OutOfHoursConsent
from sync.visits import PLANNED

# A request is taken when the borrower makes it; a clock a little ahead is not the future.
CLOCK_TOLERANCE = timedelta(minutes=5)
NO_CONSENT_REASON = "The borrower's out-of-hours consent no longer covers this visit."


@dataclass(frozen=True)
class PlanningFacts:
    """What a borrower's requests mean for planning a visit."""

    consents: tuple[OutOfHoursConsent, ...]
    do_not_visit_request: int | None  # the standing do-not-visit request, if any


def record_request(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, borrower_id: int, body: dict
) -> dict[str, Any]:
    """Record what a borrower asked for; a do-not-visit request marks every case of the
    borrower do-not-visit, which cancels their planned visits and purges their cards."""
    principal = caller.principal
    assert principal is not None
    taken_at = _not_future(body.get("taken_at") or caller.now, caller.now, "taken_at")
    effects = {"cases_changed": 0, "visits_cancelled": 0, "purges_ordered": 0}
    with transaction(db):
        if case_rows.get_borrower(db, borrower_id) is None:
            raise NotFound("no such borrower")
        _check_visit(db, borrower_id, body.get("visit_id"))
        row = {
            **{k: body.get(k) for k in ("kind", "channel", "window_start", "window_end")},
            **{k: body.get(k) for k in ("weekdays", "evidence", "note", "source", "visit_id")},
            "borrower_id": borrower_id,
            "taken_by": principal.user_id,
            "taken_at": to_iso(taken_at),
            "recorded_at": to_iso(caller.now),
        }
        if body["kind"] == REQUEST_OUT_OF_HOURS_CONSENT:
            valid_from = body.get("valid_from") or taken_at
            if body["valid_until"] <= valid_from:
                raise InvalidInput("must be after valid_from (or taken_at)", field="valid_until")
            row["valid_from"] = to_iso(valid_from)
            row["valid_until"] = to_iso(body["valid_until"])
        request_id = request_rows.insert_request(db, row)
        if body["kind"] == REQUEST_DO_NOT_VISIT:
            effects = _mark_do_not_visit(db, rt, caller, borrower_id, request_id)
        log_action(
            db,
            caller,
            "borrower_request_recorded",
            "borrower",
            borrower_id,
            {"request_id": request_id, "kind": body["kind"], "source": body["source"], **effects},
        )
        request = request_rows.get_request(db, borrower_id, request_id) or {}
    return {"request": _out(request, caller.now), **effects}


def withdraw_request(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    borrower_id: int,
    request_id: int,
    body: dict,
) -> dict[str, Any]:
    """Record that the borrower withdrew a request. Withdrawing a consent cancels the planned
    visits whose hours no other consent covers and orders their cards purged; withdrawing a
    do-not-visit request leaves the case flags to a dispatcher's deliberate change."""
    principal = caller.principal
    assert principal is not None
    withdrawn_at = _not_future(body.get("taken_at") or caller.now, caller.now, "taken_at")
    effects = {"cases_changed": 0, "visits_cancelled": 0, "purges_ordered": 0}
    with transaction(db):
        request = request_rows.get_request(db, borrower_id, request_id)
        if request is None:
            raise NotFound("no such request")
        if withdrawn_at < parse_iso(request["taken_at"]):
            raise InvalidInput("a request cannot be withdrawn before it was made", field="taken_at")
        withdrawal = {
            "withdrawn_at": to_iso(withdrawn_at),
            "withdrawal_source": body["source"],
            "withdrawn_by": principal.user_id,
            "withdrawal_recorded_at": to_iso(caller.now),
        }
        if not request_rows.withdraw_request(db, request_id, withdrawal):
            raise Conflict("this request was already withdrawn", field="request_id")
        if request["kind"] == REQUEST_OUT_OF_HOURS_CONSENT:
            effects.update(_drop_unconsented_visits(db, rt, caller, borrower_id))
        log_action(
            db,
            caller,
            "borrower_request_withdrawn",
            "borrower",
            borrower_id,
            {
                "request_id": request_id,
                "kind": request["kind"],
                "source": body["source"],
                **effects,
            },
        )
        request = request_rows.get_request(db, borrower_id, request_id) or {}
    return {"request": _out(request, caller.now), **effects}


def list_requests(
    db: sqlite_utils.Database, caller: Caller, borrower_id: int, kind: str | None, active: bool
) -> dict[str, Any]:
    """The borrower's requests, oldest first."""
    with transaction(db):
        if case_rows.get_borrower(db, borrower_id) is None:
            raise NotFound("no such borrower")
        items = [
            _out(row, caller.now)
            for row in request_rows.list_requests(db, borrower_id, kind, active_only=active)
        ]
        if active:
            items = [item for item in items if item["active"]]
    return {"items": items}


def consents_by_borrower(
    db: sqlite_utils.Database, borrower_ids: list[int]
) -> dict[int, tuple[OutOfHoursConsent, ...]]:
    """Every recorded out-of-hours consent of these borrowers, as the compliance rules read
    them (withdrawn and expired ones too: they explain a consent_expired flag)."""
    found: dict[int, list[OutOfHoursConsent]] = {}
    for row in request_rows.consents_of_borrowers(db, borrower_ids):
        found.setdefault(row["borrower_id"], []).append(_consent(row))
    return {borrower: tuple(consents) for borrower, consents in found.items()}


def planning_facts(db: sqlite_utils.Database, borrower_id: int) -> PlanningFacts:
    """What the borrower's requests mean for planning a visit to them."""
    standing = request_rows.list_requests(db, borrower_id, REQUEST_DO_NOT_VISIT, active_only=True)
    return PlanningFacts(
        consents=consents_by_borrower(db, [borrower_id]).get(borrower_id, ()),
        do_not_visit_request=standing[0]["id"] if standing else None,
    )


def _consent(row: dict[str, Any]) -> OutOfHoursConsent:
    return OutOfHoursConsent(
        granted_at=parse_iso(row["valid_from"] or row["taken_at"]),
        expires_at=parse_iso(row["valid_until"]) if row["valid_until"] else None,
        window_start=time.fromisoformat(row["window_start"]) if row["window_start"] else None,
        window_end=time.fromisoformat(row["window_end"]) if row["window_end"] else None,
        withdrawn_at=parse_iso(row["withdrawn_at"]) if row["withdrawn_at"] else None,
    )


def _not_future(moment: datetime, now: datetime, field: str) -> datetime:
    if moment > now + CLOCK_TOLERANCE:
        raise InvalidInput(f"{field} is in the future", field=field)
    return moment


def _check_visit(db: sqlite_utils.Database, borrower_id: int, visit_id: int | None) -> None:
    if visit_id is None:
        return
    parts = visit_rows.get_joined(db, visit_id)
    if parts is None or parts["case"]["borrower_id"] != borrower_id:
        raise InvalidInput("no visit to this borrower with this id", field="visit_id")


def _mark_do_not_visit(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, borrower_id: int, request_id: int
) -> dict[str, int]:
    """Every case of the borrower, closed ones too (a case may be reopened), is marked."""
    changes = [
        apply_change(
            db,
            rt,
            caller,
            case,
            status=None,
            flags={DO_NOT_VISIT: True},
            reason=f"borrower request {request_id}",
            source="borrower_request",
        )
        for case in case_rows.cases_of_borrower(db, borrower_id)
    ]
    stop_visits(db, rt, caller, changes)
    return {
        "cases_changed": sum(1 for c in changes if c.changed),
        "visits_cancelled": sum(c.visits_cancelled for c in changes),
        "purges_ordered": sum(c.purges_ordered for c in changes),
    }


def _drop_unconsented_visits(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, borrower_id: int
) -> dict[str, int]:
    """Cancel the borrower's planned visits whose out-of-hours window no consent still in
    force covers, and order their cards purged."""
    consents = consents_by_borrower(db, [borrower_id]).get(borrower_id, ())
    policy = rt.compliance
    unconsented = []
    for parts in visit_rows.planned_of_borrower(db, borrower_id):
        visit = parts["visit"]
        zone = parts["borrower"]["time_zone"] or rt.settings["DEFAULT_TIME_ZONE"]
        hours = needs_consent(policy, visit)
        if hours and not all(
            window_consented(policy, visit, hour, consents, zone) for hour in hours
        ):
            unconsented.append(visit["id"])
    if not unconsented:
        return {"visits_cancelled": 0, "purges_ordered": 0}
    now = to_iso(caller.now)
    by = caller.principal.user_id if caller.principal else None
    cancelled = visit_rows.set_status_where(
        db,
        unconsented,
        PLANNED,
        {
            "status": CANCELLED,
            "cancel_reason": NO_CONSENT_REASON,
            "updated_at": now,
            "updated_by": by,
        },
    )
    visit_rows.record_history_of(db, cancelled, now, by)
    purged = sync_rows.order_visit_purges(db, cancelled, CANCELLED, now)
    return {"visits_cancelled": len(cancelled), "purges_ordered": purged}


def _out(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A request as answered, with whether it is in force now."""
    expired = row.get("valid_until") is not None and parse_iso(row["valid_until"]) <= now
    return {**row, "active": row.get("withdrawn_at") is None and not expired}
