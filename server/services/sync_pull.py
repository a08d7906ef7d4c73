"""Pull: read the agent's visits and the device's cards, plan with sync.cards, write.

The server keeps, per device, the cards it delivered (`device_cards`); the rules deciding
what is sent, what is purged and when a device is blocked are in sync/cards.py.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import sqlite_utils

from schemas.fast_dump import dumped, written_type
from schemas.sync import OutcomeSchema
from schemas.visits import AgentVisitSchema
from server import memo
from server.clock import to_iso
from server.domain.disclosure import build_card
from server.errors import BadCursor
from server.runtime import Caller, Runtime
from server.services import exposure
from server.services.disclosure import (
    Parts,
    agent_card_facts,
    agent_may_see,
    card_visit,
    computed_card_facts,
    held_cards,
    serve_cards,
)
from server.services.views import visit_view
from server.storage import pull_reads
from server.storage import sync as sync_rows
from server.storage import visits as visit_rows
from server.storage.connection import transaction
from server.storage.sync import stored_json
from sync.cards import CardWindow, plan_pull
from sync.cursor import CursorState, InvalidCursor, decode_cursor, encode_cursor
from sync.flag_views import agent_may_learn_id_result, agent_outcome_dict, card_facts
from sync.identity import id_verification

AGENT_VISIT_FIELDS = frozenset(AgentVisitSchema().fields)
# The agent's fields visit_view copies from the visit row (it sets the other two itself).
_SET_BY_VIEW = ("case_external_id", "borrower")
_FROM_VISIT_ROW = tuple(sorted(AGENT_VISIT_FIELDS.difference(_SET_BY_VIEW)))


def _agent_card(rt: Runtime, parts: Parts, computed: dict[str, Any]) -> dict[str, Any]:
    """The agent's card of a visit (a computed field such as the repayment status
    included), built once: for its digest, and for serve_cards if it is sent."""
    fields = rt.disclosure.allowed_fields("agent", parts["visit"].get("purpose"))
    case = {**parts["case"], **computed}
    return build_card(fields, parts["borrower"], case, parts["visit"])


# json.dumps(sent, sort_keys=True, default=str), the encoder built once.
_DIGEST_JSON = json.JSONEncoder(sort_keys=True, default=str).encode


def _card_digest(parts: Parts, card: dict[str, Any]) -> str:
    """A digest of what the device would be sent (the agent's fields of visit_view), to
    know when it changed."""
    visit = parts["visit"]
    sent = {name: visit[name] for name in _FROM_VISIT_ROW if name in visit}
    for name, value in zip(_SET_BY_VIEW, (parts["case"]["external_id"], card), strict=True):
        if name in AGENT_VISIT_FIELDS:  # as visit_view sets them
            sent[name] = value
    return hashlib.sha256(_DIGEST_JSON(sent).encode()).hexdigest()


# Cards and digests already worked out, by everything they are computed from (below): a
# device's pull rebuilds and digests every card it may hold to compare with what it holds,
# and from one pull to the next these are nearly always the same rows. Bounded (an entry is
# ~4 KB: 2,048 cards, ~80 agents' days, in ~8 MB per worker); the oldest entry goes first.
# Nothing outside _built_card sees the stored cards (it hands out copies).
_CARD_MEMO: dict[tuple[Any, ...], tuple[dict[str, Any], tuple[str, ...], str]] = {}
CARD_MEMO_SIZE = 2048
_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per row layout, shared


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a value that tells apart what JSON writes differently
    (1, 1.0 and True are equal keys in a dict, but not the same text)."""
    if isinstance(value, dict):
        return (dict, tuple((key, _frozen(each)) for key, each in value.items()))
    if isinstance(value, list | tuple):
        return (type(value), tuple(_frozen(each) for each in value))
    return (type(value), value)


def _content_key(fields: tuple[str, ...], parts: Parts, computed: dict[str, Any]) -> tuple:
    """What a card and its digest are computed from: the policy's fields, the names, values
    and value types of the visit, case and borrower rows (plain column values), and the
    computed facts."""
    visit, case, borrower = parts["visit"], parts["case"], parts["borrower"]
    names = (*visit, "|", *case, "|", *borrower)  # "|" is no column's name
    values = (*visit.values(), *case.values(), *borrower.values())
    return (
        fields,
        _NAMES.setdefault(names, names),
        values,
        tuple(map(type, values)),
        _frozen(computed),
    )


def _fresh(value: Any) -> Any:
    """A copy of a card value's containers, so no caller shares one with the memo."""
    if type(value) is dict:
        return {key: _fresh(each) for key, each in value.items()}
    if type(value) is list:
        return [_fresh(each) for each in value]
    return value


def _built_card(rt: Runtime, parts: Parts, computed: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The agent's card of a visit (_agent_card) and its digest (_card_digest), computed
    once per distinct content (_content_key), so it is the same card and digest whenever
    the key is the same."""
    fields = rt.disclosure.allowed_fields("agent", parts["visit"].get("purpose"))
    try:
        key = _content_key(fields, parts, computed)
        known = _CARD_MEMO.get(key)
    except TypeError:  # a value that cannot be a key (none in today's rows): no memo
        card = _agent_card(rt, parts, computed)
        return card, _card_digest(parts, card)
    if known is None:
        card = _agent_card(rt, parts, computed)
        kept = _fresh(card)
        nested = tuple(name for name, value in kept.items() if type(value) in (dict, list))
        known = (kept, nested, _card_digest(parts, card))
        memo.keep(_CARD_MEMO, key, known, CARD_MEMO_SIZE)
        return card, known[2]
    kept, nested, digest = known
    card = dict(kept)
    for name in nested:  # the values that are containers, copied
        card[name] = _fresh(kept[name])
    return card, digest


def _disclosed(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    visit_ids: list[int],
    desired: dict[int, Parts],
) -> dict[int, frozenset[str]]:
    """By visit id: what the agent's current card discloses (agent_card_facts). A desired
    visit is the agent's and its card may be held now, so its facts depend on its purpose
    alone: computed once per purpose, not once per outcome; the other visits are read."""
    principal = caller.principal
    assert principal is not None
    by_purpose: dict[str | None, frozenset[str]] = {}
    facts: dict[int, frozenset[str]] = {}
    others = []
    for visit_id in set(visit_ids):
        parts = desired.get(visit_id)
        if parts is None:
            others.append(visit_id)
            continue
        visit = parts["visit"]
        purpose = visit.get("purpose")
        if purpose not in by_purpose:
            by_purpose[purpose] = card_facts(
                rt.disclosure.allowed_fields("agent", purpose), True, True
            )
        facts[visit_id] = by_purpose[purpose]
    if others:
        facts.update(agent_card_facts(db, rt, caller, others))
    return facts


_NO_FACTS: frozenset[str] = frozenset()


def _agent_outcome(row: dict[str, Any], seen: frozenset[str], receipt: Any) -> dict[str, Any]:
    """The agent's outcome of a stored record (agent_outcome_dict), with its receipt and
    what it may learn of the ID check."""
    data = agent_outcome_dict(stored_json(row["outcome"]), seen)
    data["receipt"] = receipt
    if agent_may_learn_id_result(seen):
        # Only an ID confirmation's body says anything to its outcome.
        body = stored_json(row["body"]) if row["kind"] == "id_confirmation" else {}
        data["id_verification"] = id_verification(row["kind"], body, data)
    else:
        data["id_verification"] = None
    return data


# Outcomes already worked out and dumped by OutcomeSchema (fast_dump.dumped, which the
# answer's dump hands on), by everything they are computed from: the stored outcome and
# body texts, the record's kind and the facts the agent's card discloses. A phone pulls the
# same outcomes pull after pull (its cursor moves past them only once it stores one), and
# building and dumping them was a third of a pull. Only outcomes without a receipt (all
# but agreements') are kept; at most OUTCOME_MEMO_SIZE (about 1.5 KB each: ~6 MB per
# worker), the oldest goes first. Nothing outside _outcome sees the stored ones: it hands
# out copies of the containers the ledger may remove a fact from (the outcome and its flags).
_OUTCOME_MEMO: dict[tuple[Any, ...], dict[str, Any]] = {}
OUTCOME_MEMO_SIZE = 4096
_WRITTEN_OUTCOME = written_type(OutcomeSchema)


def _outcome(row: dict[str, Any], seen: frozenset[str], receipt: Any) -> dict[str, Any]:
    """_agent_outcome(row, seen, receipt), already dumped by OutcomeSchema when it has no
    receipt (then computed once per distinct row content and facts)."""
    if receipt is not None:
        return _agent_outcome(row, seen, receipt)
    key = (row["outcome"], row["body"], row["kind"], seen)
    known = _OUTCOME_MEMO.get(key)
    if known is None:
        known = dumped(OutcomeSchema, _agent_outcome(row, seen, None))
        if type(known) is not _WRITTEN_OUTCOME:  # not compiled: dumped with the answer
            return known
        memo.keep(_OUTCOME_MEMO, key, known, OUTCOME_MEMO_SIZE)
    copy = _WRITTEN_OUTCOME(known)
    flags = known["flags"]
    if flags:
        copy["flags"] = [dict(flag) for flag in flags]
    return copy


def _decode(rt: Runtime, device: str, cursor: str | None) -> CursorState:
    if not cursor:
        return CursorState(device_id=device, pull_seq=0, outcome_seq=0)
    try:
        return decode_cursor(cursor, key=rt.cursor_key, device_id=device)
    except InvalidCursor as exc:
        raise BadCursor(
            f"cursor refused: {exc.reason}; pull again without one", field="cursor"
        ) from None


def pull(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, cursor: str | None, limit: int
) -> dict[str, Any]:
    """Cards to add or update, purge orders, and outcomes of the device's records."""
    principal = caller.principal
    assert principal is not None and principal.device_id is not None
    device, agent, now = principal.device_id, principal.user_id, caller.now
    state = _decode(rt, device, cursor)
    today = now.date()
    with transaction(db):
        # Read: the agent's visits around today, the device's cards, the records' outcomes.
        candidates = visit_rows.agent_visits_between(
            db,
            agent,
            (today - timedelta(days=2)).isoformat(),
            (today + timedelta(days=3 + rt.cards.lead.days)).isoformat(),
        )
        desired: dict[int, Parts] = {}
        windows: dict[int, CardWindow] = {}
        for parts in candidates:
            window = agent_may_see(rt, parts, agent, now)
            if window is not None:
                desired[parts["visit"]["id"]] = parts
                windows[parts["visit"]["id"]] = window
        held = held_cards(db, device)
        gone = [v for v in held if v not in desired]
        current = {
            parts["visit"]["id"]: card_visit(rt, parts)
            for parts in visit_rows.joined_by_ids(db, gone)
        }
        computed = computed_card_facts(db, rt, caller, list(desired.values()))
        built: dict[int, dict[str, Any]] = {}
        digests: dict[int, str] = {}
        for visit_id, parts in desired.items():
            built[visit_id], digests[visit_id] = _built_card(
                rt, parts, computed.get(parts["case"]["id"], {})
            )
        outcome_rows = pull_reads.outcomes_after(db, device, state.outcome_seq, limit + 1)
        more_outcomes = len(outcome_rows) > limit
        outcome_rows = outcome_rows[:limit]
        # Whose each record is, as accounting the outcomes would read it (ledger.subjects).
        exposure.note_owners(
            "record",
            {
                row["id"]: (row["borrower_id"], row["case_id"], row["visit_id"])
                for row in outcome_rows
                if row["borrower_id"] is not None
            },
        )

        # Plan.
        plan = plan_pull(
            list(digests.items()), held, current, agent, state.pull_seq, now, rt.cards, limit
        )
        page = [desired[visit_id] for visit_id in plan.send]

        # Write: purge orders, the ledger (with the cards), the deliveries, the pull.
        sync_rows.order_purges(db, device, dict(plan.new_purges), to_iso(now))
        pull_seq = sync_rows.device_sync_state(db, device)["pull_count"] + 1
        cards = serve_cards(
            db,
            rt,
            caller,
            page,
            computed=computed,
            built=[built[v] for v in plan.send],
            held=held,
        )
        delivered_at = to_iso(now)
        expiries = {w: to_iso(w.expires_at) for w in {windows[v] for v in plan.send}}
        sync_rows.deliver_cards(
            db,
            [
                {
                    "device_id": device,
                    "visit_id": parts["visit"]["id"],
                    "borrower_id": parts["borrower"]["id"],
                    "case_id": parts["case"]["id"],
                    "card_digest": digests[parts["visit"]["id"]],
                    "delivered_pull": pull_seq,
                    "delivered_at": delivered_at,
                    "expires_at": expiries[windows[parts["visit"]["id"]]],
                }
                for parts in page
            ],
        )
        sync_rows.record_pull(db, device, pull_seq, delivered_at)
        receipts = sync_rows.receipts(
            db, [r["id"] for r in outcome_rows if r["kind"] == "agreement"]
        )
        disclosed = _disclosed(db, rt, caller, [r["visit_id"] for r in outcome_rows], desired)

    outcomes = [
        _outcome(row, disclosed.get(row["visit_id"], _NO_FACTS), receipts.get(row["id"]))
        for row in outcome_rows
    ]
    next_state = CursorState(
        device_id=device,
        pull_seq=pull_seq,
        outcome_seq=outcome_rows[-1]["seq"] if outcome_rows else state.outcome_seq,
    )
    return {
        "cursor": encode_cursor(next_state, key=rt.cursor_key),
        "has_more": plan.more_cards or more_outcomes,
        "server_time": now,
        "upserts": [visit_view(parts, card) for parts, card in zip(page, cards, strict=True)],
        "purges": [
            {"visit_id": p.visit_id, "reason": p.reason, "ordered_at": to_iso(p.ordered_at)}
            for p in plan.purges
        ],
        "outcomes": outcomes,
        "blocked": {"reason": "purge_unacknowledged", "visit_ids": list(plan.blocked)}
        if plan.blocked
        else None,
    }


def acknowledge_purges(
    db: sqlite_utils.Database, caller: Caller, visit_ids: list[int]
) -> dict[str, Any]:
    """Record that this device has deleted the cards of these visits."""
    principal = caller.principal
    assert principal is not None and principal.device_id is not None
    with transaction(db):
        confirmed = sync_rows.confirm_purges(db, principal.device_id, visit_ids, to_iso(caller.now))
    return {"confirmed": confirmed}
