"""A case's timeline: its contact log laid on the collections ladder (sync.contacts.climb),
with the current rung, time on it, what happened on each rung and the next lawful action."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from server.clock import parse_iso, to_iso
from server.domain.repayment import PENDING
from server.errors import NotFound
from server.runtime import Caller, Runtime
from server.services import repayment
from server.services.contacts import case_log
from server.storage import borrower_requests as request_rows
from server.storage import cases as case_rows
from server.storage import payments as payment_rows
from server.storage.connection import transaction
from sync.cards import case_stops_visits
from sync.cases import CLOSED_STATUSES, LEGAL, REQUEST_DO_NOT_CONTACT, flags_set
from sync.contacts import RUNG_OF, LadderFacts, LoggedContact, climb


def case_timeline(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, case_id: int
) -> dict[str, Any]:
    """The ladder of one case, read in one transaction."""
    with transaction(db):
        case = case_rows.get_case(db, case_id)
        if case is None:
            raise NotFound("no such case")
        borrower = case_rows.get_borrower(db, case["borrower_id"]) or {}
        entries = case_log(db, case_id)
        asked = request_rows.list_requests(db, case["borrower_id"], REQUEST_DO_NOT_CONTACT, True)
    policy = rt.compliance
    log = [
        LoggedContact(e["channel"], e["direction"], parse_iso(e["occurred_at"]), e["outcome"])
        for e in entries
    ]
    blocked = frozenset(r["channel"] for r in asked if r.get("channel"))
    facts = LadderFacts(
        time_zone=borrower.get("time_zone") or rt.settings["DEFAULT_TIME_ZONE"],
        contact_start=policy.contact_window_start,
        contact_end=policy.contact_window_end,
        visit_start=policy.visit_window_start,
        visit_end=policy.visit_window_end,
        takes_visits=not case_stops_visits(
            case["status"], flags_set(case), dispute_stops_visits=policy.dispute_stops_visits
        )
        and not case.get("hardship"),
        legal=case["status"] == LEGAL,
        closed=case["status"] in CLOSED_STATUSES,
        blocked_channels=blocked,
        awaiting_until=_awaiting_until(db, rt, case_id, caller.now),
    )
    ladder = climb(log, facts, caller.now)
    since = ladder.on_rung_since
    action = ladder.next_action
    return {
        "case_id": case_id,
        "current_rung": ladder.current_rung,
        "on_rung_since": to_iso(since) if since else None,
        "time_on_rung_s": int((caller.now - since).total_seconds()) if since else None,
        "blocked_channels": sorted(blocked),
        "next_action": {
            "rung": action.rung,
            "channel": action.channel,
            "earliest_at": to_iso(action.earliest_at) if action.earliest_at else None,
            "reason": action.reason,
            "awaiting_until": to_iso(action.awaiting_until) if action.awaiting_until else None,
        },
        "rungs": [
            {
                "rung": state.rung,
                "channels": list(state.channels),
                "contacts": state.contacts,
                "first_at": to_iso(state.first_at) if state.first_at else None,
                "last_at": to_iso(state.last_at) if state.last_at else None,
                "last_outcome": state.last_outcome,
                "outcomes": dict(state.outcomes),
                "entries": [e for e in entries if RUNG_OF[e["channel"]] == state.rung],
            }
            for state in ladder.rungs
        ],
    }


def _awaiting_until(
    db: sqlite_utils.Database, rt: Runtime, case_id: int, now: datetime
) -> datetime | None:
    """The end (start of the next local day) of the grace period of the case's earliest
    promise or instalment still pending; None when nothing is pending."""
    facts = payment_rows.case_facts(db, [case_id])
    tracking = repayment.track_cases(db, rt, facts, now).get(case_id)
    pending = [s.deadline for s in tracking.states if s.state == PENDING] if tracking else []
    if not pending:
        return None
    zone = ZoneInfo(facts[case_id]["time_zone"] or rt.settings["DEFAULT_TIME_ZONE"])
    return datetime.combine(min(pending) + timedelta(days=1), time.min, zone).astimezone(UTC)
