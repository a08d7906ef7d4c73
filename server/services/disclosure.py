"""Serving borrower cards: the policy decides the fields, the ledger records every one."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlite_utils

from server.clock import to_iso
from server.domain.disclosure import CardWindow, build_card, card_window
from server.errors import Forbidden
from server.runtime import Caller, Runtime
from server.storage import ledger
from server.storage import sync as sync_rows
from server.timing import phase

Parts = dict[str, dict[str, Any]]  # {"visit": ..., "case": ..., "borrower": ...}


def window_for(rt: Runtime, parts: Parts) -> CardWindow:
    return card_window(
        date.fromisoformat(parts["visit"]["visit_date"]),
        parts["borrower"]["time_zone"] or rt.settings["DEFAULT_TIME_ZONE"],
        rt.card_lead,
        rt.card_grace,
    )


def agent_may_see(rt: Runtime, parts: Parts, agent_id: int, now: datetime) -> CardWindow | None:
    """The card window if this agent may see this visit's borrower right now."""
    visit = parts["visit"]
    if visit["agent_id"] != agent_id or visit["status"] == "cancelled":
        return None
    window = window_for(rt, parts)
    return window if window.visible_from <= now < window.expires_at else None


class PurgeOverdue(Forbidden):
    """The device left a purge order unconfirmed past the deadline: no new cards."""

    code = "purge_unacknowledged"


def _refuse_if_purge_overdue(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, device_id: str
) -> None:
    deadline = caller.now - timedelta(seconds=rt.settings["PURGE_ACK_DEADLINE_S"])
    overdue = sync_rows.overdue_purges(db, device_id, to_iso(deadline))
    if overdue:
        raise PurgeOverdue(
            "confirm the purges this device was ordered to carry out (POST /sync/purge-acks)",
            visit_ids=overdue,
        )


def serve_cards(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    items: list[Parts],
    *,
    purpose: str | None = None,
) -> list[dict[str, Any]]:
    """Build one card per item and write one ledger entry per borrower served.

    The caller holds the write transaction, so what is served and what is logged agree.
    `purpose` overrides the ledger purpose (dispatchers plan; agents visit)."""
    principal = caller.principal
    assert principal is not None
    if items and principal.role == "agent" and principal.device_id:
        _refuse_if_purge_overdue(db, rt, caller, principal.device_id)
    cards: list[dict[str, Any]] = []
    by_borrower: dict[int, dict[str, Any]] = {}
    for parts in items:
        visit, case, borrower = parts["visit"], parts["case"], parts["borrower"]
        fields = rt.disclosure.allowed_fields(principal.role, visit.get("purpose"))
        card = build_card(fields, borrower, case, visit)
        card.update(borrower_id=borrower["id"], case_id=case["id"])
        if principal.role == "agent":
            card["expires_at"] = window_for(rt, parts).expires_at.astimezone(UTC)
        cards.append(card)
        if not fields:
            continue
        entry = by_borrower.setdefault(
            borrower["id"],
            {
                "occurred_at": to_iso(caller.now),
                "user_id": principal.user_id,
                "role": principal.role,
                "device_id": principal.device_id,
                "borrower_id": borrower["id"],
                "case_id": case["id"],
                "visit_id": visit.get("id"),
                "fields": set(),
                "purpose": purpose or visit.get("purpose") or "unspecified",
                "endpoint": caller.endpoint,
                "request_id": caller.request_id,
                "outcome": "served",
            },
        )
        entry["fields"].update(fields)
    entries = list(by_borrower.values())
    for entry in entries:
        entry["fields"] = json.dumps(sorted(entry["fields"]))
    with phase("ledger"):
        ledger.append(db, entries)
    return cards
