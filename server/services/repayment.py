"""Promises and instalments against payments: read the facts, judge them (domain), answer.

Nothing here is stored: each state is computed from the promises, agreements and payments
on record and the day asked about (server/domain/repayment.py, docs/promises.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from server.clock import parse_iso, to_iso
from server.domain.repayment import (
    INSTALMENT,
    PROMISE,
    ContactLimits,
    Obligation,
    ObligationState,
    Payment,
    Tracking,
    contact_stop,
    most_pressing,
    next_action,
    track,
)
from server.runtime import Caller, Runtime
from server.storage import payments as payment_rows
from server.storage.connection import transaction
from sync.cases import flags_set

Row = dict[str, Any]
_SCAN_BATCH = 200


def _local_day(moment: str | datetime, zone: ZoneInfo) -> date:
    value = parse_iso(moment) if isinstance(moment, str) else moment
    return value.astimezone(zone).date()


def _amount(text: Any) -> Decimal | None:
    try:
        amount = Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() and amount > 0 else None


def _promises(rows: Iterable[Row], zone_of: dict[int, ZoneInfo]) -> list[Obligation]:
    found = []
    for row in rows:
        amount = _amount(row["amount"])
        if amount is None:
            continue
        found.append(
            Obligation(
                kind=PROMISE,
                id=f"{row['source']}:{row['source_id']}",
                case_id=row["case_id"],
                due_date=date.fromisoformat(row["due_date"]),
                amount=amount,
                made_on=_local_day(row["made_at"], zone_of[row["case_id"]]),
                source=row["source"],
                agent_id=row["agent_id"],
                visit_id=row["visit_id"],
            )
        )
    return found


def _instalments(rows: Iterable[Row], zone_of: dict[int, ZoneInfo]) -> list[Obligation]:
    """The instalments of each case's agreement in force: the one signed last."""
    in_force: dict[int, tuple[str, Row, dict]] = {}
    for row in rows:
        body = json.loads(row["body"])
        signed = to_iso(parse_iso(body["signed_at"]))
        held = in_force.get(row["case_id"])
        if held is None or (signed, row["id"]) > (held[0], held[1]["id"]):
            in_force[row["case_id"]] = (signed, row, body)
    found = []
    for case_id, (_, row, body) in in_force.items():
        made_on = _local_day(body["signed_at"], zone_of[case_id])
        for number, item in enumerate(body["installments"], start=1):
            found.append(
                Obligation(
                    kind=INSTALMENT,
                    id=f"{row['id']}#{number}",
                    case_id=case_id,
                    due_date=date.fromisoformat(item["due_date"]),
                    amount=Decimal(str(item["amount"])),
                    made_on=made_on,
                    source="agreement",
                    agent_id=row["agent_id"],
                    visit_id=row["visit_id"],
                )
            )
    return found


def track_cases(
    db: sqlite_utils.Database,
    rt: Runtime,
    cases: dict[int, Row],
    now: datetime,
    day: date | None = None,
) -> dict[int, Tracking]:
    """By case (rows of storage.payments.case_facts): its promises and instalments judged on
    `day` (default: today in the borrower's time zone), payments allocated oldest-due-first."""
    default_zone = rt.settings["DEFAULT_TIME_ZONE"]
    zone_of = {cid: ZoneInfo(c["time_zone"] or default_zone) for cid, c in cases.items()}
    obligations: dict[int, list[Obligation]] = {cid: [] for cid in cases}
    for obligation in _promises(payment_rows.promises_for_cases(db, list(cases)), zone_of) + (
        _instalments(payment_rows.agreements_for_cases(db, list(cases)), zone_of)
    ):
        obligations[obligation.case_id].append(obligation)
    payments: dict[int, list[Payment]] = {cid: [] for cid in cases}
    for row in payment_rows.payments_for_cases(db, list(cases)):
        payments[row["case_id"]].append(
            Payment(
                row["id"],
                _local_day(row["paid_at"], zone_of[row["case_id"]]),
                Decimal(row["amount"]),
            )
        )
    grace = rt.settings["PAYMENT_GRACE_DAYS"]
    return {
        cid: track(
            obligations[cid], payments[cid], day or now.astimezone(zone_of[cid]).date(), grace
        )
        for cid in cases
    }


def card_statuses(
    db: sqlite_utils.Database,
    rt: Runtime,
    case_ids: list[int],
    now: datetime,
    known: dict[int, Row] | None = None,
) -> dict[int, dict[str, Any] | None]:
    """By case: the card's `repayment_status` — the most pressing promise or instalment
    (state, amount due, due date), or None when nothing is owed. `known`: by case id, the
    case's `currency` and its borrower's `time_zone` as storage.payments.case_facts reads
    them, read already in this transaction (every one of `case_ids`), not read again."""
    cases = known if known is not None else payment_rows.case_facts(db, case_ids)
    found: dict[int, dict[str, Any] | None] = {}
    for case_id, tracking in track_cases(db, rt, cases, now).items():
        state = most_pressing(tracking.states)
        found[case_id] = None if state is None else _status(state, cases[case_id]["currency"])
    return found


def _status(state: ObligationState, currency: str) -> dict[str, Any]:
    return {
        "kind": state.obligation.kind,
        "state": state.state,
        "due_date": state.obligation.due_date.isoformat(),
        "amount_due": format(state.amount_due, "f"),
        "currency": currency,
    }


def promise_worklist(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, filters: dict[str, Any]
) -> dict[str, Any]:
    """One page of broken promises and overdue instalments, by case, each with its next
    lawful action; filtered by the day judged on, the team or the agent who recorded it."""
    day, after, limit = filters.get("day"), filters["after"], filters["limit"]
    with transaction(db):
        agent_ids = _agent_filter(db, filters)
        pages: list[tuple[int, list[dict[str, Any]]]] = []
        exhausted = False
        while len(pages) < limit and not exhausted:
            batch = payment_rows.cases_with_obligations(db, after, _SCAN_BATCH, agent_ids)
            for case_id, items in _worklist_items(db, rt, caller, batch, day, agent_ids):
                if items:
                    pages.append((case_id, items))
            exhausted = len(batch) < _SCAN_BATCH
            after = batch[-1] if batch else after
    more = len(pages) > limit or not exhausted
    pages = pages[:limit]
    return {
        "day": day.isoformat() if day else None,
        "items": [item for _, items in pages for item in items],
        "next_after": pages[-1][0] if more and pages else None,
    }


def _agent_filter(db: sqlite_utils.Database, filters: dict[str, Any]) -> list[int] | None:
    agents: set[int] | None = None
    if filters.get("team") is not None:
        agents = set(payment_rows.agents_of_team(db, filters["team"]))
    if filters.get("agent_id") is not None:
        agents = {filters["agent_id"]} & agents if agents is not None else {filters["agent_id"]}
    return None if agents is None else sorted(agents)


def _worklist_items(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    case_ids: list[int],
    day: date | None,
    agent_ids: list[int] | None,
) -> Iterable[tuple[int, list[dict[str, Any]]]]:
    cases = payment_rows.case_facts(db, case_ids)
    tracked = track_cases(db, rt, cases, caller.now, day)
    refusals = payment_rows.no_contact_channels(db, [c["borrower_id"] for c in cases.values()])
    for case_id in case_ids:
        case = cases[case_id]
        channels = refusals.get(case["borrower_id"], set())
        action = next_action(
            ContactLimits(
                case_stops_contact=contact_stop(case["status"], flags_set(case)),
                no_contact_channels=frozenset(c for c in channels if c),
                no_contact_at_all=None in channels,
            )
        )
        items = [
            _item(case, state, action)
            for state in tracked[case_id].states
            if state.overdue and (agent_ids is None or state.obligation.agent_id in agent_ids)
        ]
        yield case_id, items


def _item(case: Row, state: ObligationState, action: Any) -> dict[str, Any]:
    obligation = state.obligation
    terms = {"amount": format(obligation.amount, "f"), "due_date": obligation.due_date.isoformat()}
    promise = instalment = None
    if obligation.kind == PROMISE:
        promise = {**terms, "made_on": obligation.made_on.isoformat()}
    else:
        agreement_id, number = obligation.id.split("#")
        instalment = {**terms, "agreement_id": agreement_id, "number": int(number)}
    return {
        "case_id": case["id"],
        "case_external_id": case["external_id"],
        "kind": obligation.kind,
        "obligation_id": obligation.id,
        "source": obligation.source,
        "agent_id": obligation.agent_id,
        "visit_id": obligation.visit_id,
        "promise": promise,
        "instalment": instalment,
        "status": {
            **_status(state, case["currency"]),
            "deadline": state.deadline.isoformat(),
            "paid_on_time": format(state.paid_on_time, "f"),
            "paid_late": format(state.paid_late, "f"),
        },
        "next_action": {"action": action.action, "reason": action.reason},
    }
