"""Pull: what a device must add, update and purge, and the outcomes of its records.

The server keeps, per device, the cards it delivered (`device_cards`). A pull compares them
with the cards the agent may hold right now: what is missing or changed is sent (and
written to the exposure ledger), what may no longer be held is ordered purged. A delivery
counts only once the device comes back with the cursor of the pull that carried it, so a
dropped response is answered again, identically, when the same cursor is presented.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import sqlite_utils

from server.clock import to_iso
from server.domain.disclosure import build_card
from server.errors import InvalidInput
from server.runtime import Caller, Runtime
from server.services.disclosure import Parts, agent_may_see, serve_cards, window_for
from server.services.sync_push import outcome_out
from server.services.views import visit_view
from server.storage import sync as sync_rows
from server.storage import visits as visit_rows
from server.storage.connection import transaction
from sync.cursor import CursorState, InvalidCursor, decode_cursor, encode_cursor
from sync.records import RecordOutcome


class BadCursor(InvalidInput):
    """The cursor is not one this server issued to this device."""

    code = "invalid_cursor"


def _card_digest(rt: Runtime, parts: Parts) -> str:
    """A digest of what the device would be sent, to know when it changed."""
    fields = rt.disclosure.allowed_fields("agent", parts["visit"].get("purpose"))
    view = visit_view(
        parts,
        build_card(fields, parts["borrower"], parts["case"], parts["visit"]),
        with_notes=False,
    )
    return hashlib.sha256(json.dumps(view, sort_keys=True, default=str).encode()).hexdigest()


def _purge_reason(parts: Parts | None, agent_id: int) -> str:
    if parts is None:
        return "expired"
    if parts["visit"]["status"] == "cancelled":
        return "cancelled"
    if parts["visit"]["agent_id"] != agent_id:
        return "reassigned"
    return "expired"


def pull(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, cursor: str | None, limit: int
) -> dict[str, Any]:
    principal = caller.principal
    assert principal is not None and principal.device_id is not None
    device, agent, now = principal.device_id, principal.user_id, caller.now
    try:
        state = (
            decode_cursor(cursor, key=rt.cursor_key, device_id=device)
            if cursor
            else CursorState(device_id=device, pull_seq=0, outcome_seq=0)
        )
    except InvalidCursor as exc:
        raise BadCursor(
            f"cursor refused: {exc.reason}; pull again without one", field="cursor"
        ) from None
    today = now.date()
    lead_days = rt.card_lead.days + 1
    with transaction(db):
        candidates = visit_rows.agent_visits_between(
            db,
            agent,
            (today - timedelta(days=2)).isoformat(),
            (today + timedelta(days=2 + lead_days)).isoformat(),
        )
        desired = {p["visit"]["id"]: p for p in candidates if agent_may_see(rt, p, agent, now)}
        held = {row["visit_id"]: row for row in sync_rows.device_cards(db, device)}

        purges = {}
        for visit_id, row in held.items():
            if visit_id not in desired:
                parts = None if row["purge_reason"] else visit_rows.get_joined(db, visit_id)
                purges[visit_id] = row["purge_reason"] or _purge_reason(parts, agent)
        sync_rows.order_purges(db, device, purges, to_iso(now))

        overdue = sync_rows.overdue_purges(
            db, device, to_iso(now - timedelta(seconds=rt.settings["PURGE_ACK_DEADLINE_S"]))
        )
        wanted = []
        for visit_id, parts in desired.items():
            digest = _card_digest(rt, parts)
            row = held.get(visit_id)
            already = (
                row is not None
                and row["delivered_pull"] <= state.pull_seq
                and row["purge_ordered_at"] is None
                and row["card_digest"] == digest
            )
            if not already:
                wanted.append((parts, digest))
        page = [] if overdue else wanted[:limit]

        outcome_rows = sync_rows.outcomes_after(db, device, state.outcome_seq, limit + 1)
        more_outcomes = len(outcome_rows) > limit
        outcome_rows = outcome_rows[:limit]

        pull_seq = sync_rows.device_sync_state(db, device)["pull_count"] + 1
        cards = serve_cards(db, rt, caller, [parts for parts, _ in page])
        sync_rows.deliver_cards(
            db,
            [
                {
                    "device_id": device,
                    "visit_id": parts["visit"]["id"],
                    "borrower_id": parts["borrower"]["id"],
                    "case_id": parts["case"]["id"],
                    "card_digest": digest,
                    "delivered_pull": pull_seq,
                    "delivered_at": to_iso(now),
                    "expires_at": to_iso(window_for(rt, parts).expires_at),
                }
                for parts, digest in page
            ],
        )
        sync_rows.record_pull(db, device, pull_seq, to_iso(now))
        receipts = sync_rows.receipts(
            db, [r["id"] for r in outcome_rows if r["kind"] == "agreement"]
        )
        ordered = {row["visit_id"]: row for row in sync_rows.device_cards(db, device)}

    outcomes = []
    for row in outcome_rows:
        record = RecordOutcome.from_dict(json.loads(row["outcome"]))
        body = json.loads(row["body"]) if row.get("body") else {}
        outcomes.append(outcome_out(record, (row["kind"], body), receipts))
    next_state = CursorState(
        device_id=device,
        pull_seq=pull_seq,
        outcome_seq=outcome_rows[-1]["seq"] if outcome_rows else state.outcome_seq,
    )
    return {
        "cursor": encode_cursor(next_state, key=rt.cursor_key),
        "has_more": (not overdue and len(wanted) > limit) or more_outcomes,
        "server_time": now,
        "upserts": [
            visit_view(parts, card, with_notes=False)
            for (parts, _), card in zip(page, cards, strict=True)
        ],
        "purges": [
            {
                "visit_id": v,
                "reason": ordered[v]["purge_reason"],
                "ordered_at": ordered[v]["purge_ordered_at"],
            }
            for v in sorted(ordered)
            if ordered[v]["purge_ordered_at"]
        ],
        "outcomes": outcomes,
        "blocked": {"reason": "purge_unacknowledged", "visit_ids": overdue} if overdue else None,
    }


def acknowledge_purges(
    db: sqlite_utils.Database, caller: Caller, visit_ids: list[int]
) -> dict[str, Any]:
    principal = caller.principal
    assert principal is not None and principal.device_id is not None
    with transaction(db):
        confirmed = sync_rows.confirm_purges(db, principal.device_id, visit_ids, to_iso(caller.now))
    return {"confirmed": confirmed}
