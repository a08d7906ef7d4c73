"""Serving borrower cards: the policy decides the fields, the ledger records every one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import sqlite_utils

from server.clock import parse_iso, to_iso
from server.domain.disclosure import COMPUTED_CARD_FIELDS, build_card
from server.errors import PurgeOverdue
from server.runtime import Caller, Runtime
from server.services import exposure, repayment
from server.storage import sync as sync_rows
from server.storage import visits as visit_rows
from sync.cards import (
    CardVisit,
    CardWindow,
    HeldCard,
    card_window,
    case_stops_visits,
    may_hold,
    overdue_purges,
)
from sync.cases import flags_set
from sync.flag_views import card_facts

Parts = dict[str, dict[str, Any]]  # {"visit": ..., "case": ..., "borrower": ...}


def card_visit(rt: Runtime, parts: Parts) -> CardVisit:
    """The card rules' view of a joined visit row."""
    visit, case = parts["visit"], parts["case"]
    stops = case_stops_visits(
        case.get("status") or "",
        flags_set(case),
        dispute_stops_visits=rt.compliance.dispute_stops_visits,
    )
    return CardVisit(
        visit_id=visit["id"],
        agent_id=visit["agent_id"],
        status=visit["status"],
        visit_date=date.fromisoformat(visit["visit_date"]),
        time_zone=parts["borrower"]["time_zone"] or rt.settings["DEFAULT_TIME_ZONE"],
        case_closed=bool(stops),
    )


def window_for(rt: Runtime, parts: Parts) -> CardWindow:
    """When an agent may hold this visit's card (its day and time zone as card_visit
    reads them; card_window keeps the windows it computed)."""
    return card_window(
        date.fromisoformat(parts["visit"]["visit_date"]),
        parts["borrower"]["time_zone"] or rt.settings["DEFAULT_TIME_ZONE"],
        rt.cards,
    )


def agent_may_see(rt: Runtime, parts: Parts, agent_id: int, now: datetime) -> CardWindow | None:
    """The card window if this agent may see this visit's borrower right now."""
    return may_hold(card_visit(rt, parts), agent_id, now, rt.cards)


def agent_card_facts(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    visit_ids: list[int],
    known: Iterable[Parts] = (),
) -> dict[int, frozenset[str]]:
    """By visit id: what the calling agent's current card for it discloses, in the facts
    sync.flag_views names (the policy's agent fields for the visit's purpose, while the
    card may be held). Answers to agents carry no borrower fact beyond these. `known`:
    visits already read in this transaction (with case and borrower), not read again;
    whether a card may be held does not change within a push (only cancelling does)."""
    principal = caller.principal
    assert principal is not None
    wanted = set(visit_ids)
    read = {parts["visit"]["id"]: parts for parts in known if parts["visit"]["id"] in wanted}
    missing = sorted(wanted - read.keys())
    facts = {}
    for parts in [*read.values(), *visit_rows.joined_by_ids(db, missing)]:
        visit = parts["visit"]
        facts[visit["id"]] = card_facts(
            rt.disclosure.allowed_fields("agent", visit.get("purpose")),
            agent_may_see(rt, parts, principal.user_id, caller.now) is not None,
            visit["agent_id"] == principal.user_id,
        )
    return facts


def held_cards(db: sqlite_utils.Database, device_id: str) -> dict[int, HeldCard]:
    """The device's cards whose purge it has not confirmed, by visit id."""
    return {
        row["visit_id"]: HeldCard(
            visit_id=row["visit_id"],
            card_digest=row["card_digest"],
            delivered_pull=row["delivered_pull"],
            purge_reason=row["purge_reason"],
            purge_ordered_at=parse_iso(row["purge_ordered_at"])
            if row["purge_ordered_at"]
            else None,
        )
        for row in sync_rows.device_cards(db, device_id)
    }


def _refuse_if_purge_overdue(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    device_id: str,
    held: Mapping[int, HeldCard] | None,
) -> None:
    if held is None:
        held = held_cards(db, device_id)
    overdue = overdue_purges(held.values(), caller.now, rt.cards)
    if overdue:
        raise PurgeOverdue(
            "confirm the purges this device was ordered to carry out (POST /sync/purge-acks)",
            visit_ids=overdue,
        )


def computed_card_facts(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, items: list[Parts]
) -> dict[int, dict[str, Any]]:
    """By case: the computed card fields some card in `items` may show, read in one go."""
    role = caller.principal.role if caller.principal else None
    wanted = [
        parts["case"]["id"]
        for parts in items
        if COMPUTED_CARD_FIELDS
        & set(rt.disclosure.allowed_fields(role, parts["visit"].get("purpose")))
    ]
    if not wanted:  # no card in `items` may show a computed field
        return {}
    # The items' case and borrower rows are read already (joined visit rows): case_facts'
    # two columns of them; read again only for items that do not carry both.
    known: dict[int, dict[str, Any]] | None = {
        parts["case"]["id"]: {
            "currency": parts["case"]["currency"],
            "time_zone": parts["borrower"]["time_zone"],
        }
        for parts in items
        if "currency" in parts["case"] and "time_zone" in parts["borrower"]
    }
    if len(known) != len({parts["case"]["id"] for parts in items}):
        known = None
    statuses = repayment.card_statuses(db, rt, wanted, caller.now, known)
    return {case_id: {"repayment_status": status} for case_id, status in statuses.items()}


def serve_cards(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    items: list[Parts],
    *,
    purpose: str | None = None,
    computed: dict[int, dict[str, Any]] | None = None,
    built: list[dict[str, Any]] | None = None,
    held: Mapping[int, HeldCard] | None = None,
) -> list[dict[str, Any]]:
    """Build one card per item and ledger one entry per borrower served.

    The entries go with the response's others (services/exposure.py); the caller holds the
    write transaction, so what is served and what is logged agree.
    `purpose` overrides the ledger purpose (dispatchers plan; agents visit); `computed`:
    computed_card_facts of these items (or more), when the caller read them already in
    this transaction; `built`: the agent cards of these items as build_card made them for an
    agent with `computed` (copied here, not changed), when the caller built them already;
    `held`: the calling device's held cards (held_cards), when read in this transaction."""
    principal = caller.principal
    assert principal is not None
    if items and principal.role == "agent" and principal.device_id:
        _refuse_if_purge_overdue(db, rt, caller, principal.device_id, held)
    cards: list[dict[str, Any]] = []
    by_borrower: dict[int, dict[str, Any]] = {}
    if computed is None:
        computed = computed_card_facts(db, rt, caller, items)
    if principal.role != "agent":
        built = None  # built for an agent's fields
    occurred_at = to_iso(caller.now)
    for index, parts in enumerate(items):
        visit, case, borrower = parts["visit"], parts["case"], parts["borrower"]
        fields = rt.disclosure.allowed_fields(principal.role, visit.get("purpose"))
        if built is not None:
            card = dict(built[index])
        else:
            case = {**case, **computed.get(case["id"], {})}
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
                "occurred_at": occurred_at,
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
    exposure.record(db, list(by_borrower.values()))
    return cards
