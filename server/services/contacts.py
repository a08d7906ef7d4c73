"""The contact log: every contact with a borrower on every channel, one entry per contact
whatever the number of sources that reported it (an API call, an import row, a phone's
synced record). How the same contact is recognised is `merge_contacts` (docs/contacts.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

import sqlite_utils

from server.clock import parse_iso, to_iso
from server.errors import ContactExists, InvalidInput, NotFound
from server.runtime import Caller, Runtime
from server.services.contact_compliance import flag_candidates
from server.services.staff_log import log_action
from server.storage import accounts as account_rows
from server.storage import cases as case_rows
from server.storage import contacts as contact_rows
from server.storage import visits as visit_rows
from server.storage.connection import transaction
from sync.contacts import HOME_VISIT, LOGGED_CHANNELS, agent_key, natural_key
from sync.records import IncomingRecord
from sync.visits import HOME_PURPOSES

# A contact is logged once it happened; a clock a little ahead is not the future.
CLOCK_TOLERANCE = timedelta(minutes=5)
SOURCE_API = "api"
SOURCE_IMPORT = "import"
SOURCE_SYNC = "sync"
SOURCE_VISIT_REPORT = "visit_report"  # derived at read time, never stored in `contacts`


@dataclass(frozen=True)
class Candidate:
    """A contact one source reports, before it is matched against the log."""

    case_id: int
    channel: str
    direction: str
    occurred_at: datetime
    outcome: str
    agent_id: int | None
    agent_name: str | None
    source: str
    # This source's id of the report (request id, record id, a dialer's call id); empty:
    # the natural key stands for it.
    reference: str
    visit_id: int | None = None
    duration_s: int | None = None
    notes: str | None = None
    external_ref: str | None = None
    logged_by: int | None = None
    flags: tuple[dict[str, Any], ...] = ()  # the channel rules it breaks (contact_compliance)
    # A promise to pay made on this contact (outcome `promise`): tracked like a visit's.
    promise_amount: Decimal | None = None
    promise_date: date | None = None

    @cached_property
    def key(self) -> str:
        """The natural key (sync.contacts.natural_key)."""
        who = agent_key(self.agent_id, self.agent_name)
        return natural_key(self.case_id, self.channel, self.direction, self.occurred_at, who)


@dataclass(frozen=True)
class Merged:
    """Where a candidate went: its entry, and whether the entry is new."""

    contact_id: int
    created: bool


@dataclass(frozen=True)
class Placement:
    """Where each candidate of a batch goes, decided before anything is written."""

    # Per candidate: (False, id of the entry already logged) or (True, index in `fresh`).
    spots: list[tuple[bool, int]]
    fresh: list[int]  # indexes of the candidates that become new entries, in order
    fills: dict[int, str]  # external references entries logged without one now take


def merge_contacts(
    db: sqlite_utils.Database, candidates: Sequence[Candidate], now: datetime
) -> list[Merged]:
    """Log each candidate once: a candidate is the entry already logged under the same
    (channel, external reference) if both carry one, else the entry under the same natural
    key (case, channel, direction, UTC second, who); otherwise it is a new entry. Every
    source is noted on the entry it became. The caller holds the write transaction."""
    return write_contacts(db, candidates, place_contacts(db, candidates), now)


def place_contacts(db: sqlite_utils.Database, candidates: Sequence[Candidate]) -> Placement:
    """The matching half of merge_contacts: which candidates are entries already logged,
    which are new (the first of several alike in the batch), in one read per key kind."""
    refs = [(c.channel, c.external_ref) for c in candidates if c.external_ref]
    by_key, by_ref_rows = contact_rows.existing_keys(db, [c.key for c in candidates], refs)
    by_ref = {ref: row["id"] for ref, row in by_ref_rows.items()}
    fills: dict[int, str] = {}
    pending: dict[str, int] = {}  # natural key -> index of the new row in `fresh`
    pending_refs: dict[tuple[str, str], int] = {}
    fresh: list[int] = []
    spots: list[tuple[bool, int]] = []
    for index, c in enumerate(candidates):
        ref = (c.channel, c.external_ref) if c.external_ref else None
        if ref and ref in by_ref:
            spots.append((False, by_ref[ref]))
        elif ref and ref in pending_refs:
            spots.append((True, pending_refs[ref]))
        elif c.key in by_key:
            spots.append((False, by_key[c.key]))
            if ref:
                fills[by_key[c.key]] = c.external_ref or ""
                by_ref[ref] = by_key[c.key]
        elif c.key in pending:
            spots.append((True, pending[c.key]))
        else:
            pending[c.key] = len(fresh)
            if ref:
                pending_refs[ref] = len(fresh)
            spots.append((True, len(fresh)))
            fresh.append(index)
    return Placement(spots, fresh, fills)


def write_contacts(
    db: sqlite_utils.Database,
    candidates: Sequence[Candidate],
    placement: Placement,
    now: datetime,
    flags: Sequence[tuple[dict[str, Any], ...]] | None = None,
) -> list[Merged]:
    """The writing half of merge_contacts: insert the new entries (with `flags[i]` for
    candidate i when given, else its own), give old ones the external references they
    lacked, note every candidate's source."""
    logged_at = to_iso(now)
    new_ids = contact_rows.insert_contacts(
        db,
        [
            _row(candidates[i], logged_at, candidates[i].flags if flags is None else flags[i])
            for i in placement.fresh
        ],
    )
    merged: list[Merged] = []
    first_of_new: set[int] = set()
    for new, value in placement.spots:
        if not new:
            merged.append(Merged(value, False))
        else:
            merged.append(Merged(new_ids[value], value not in first_of_new))
            first_of_new.add(value)
    contact_rows.fill_external_refs(db, placement.fills)
    contact_rows.add_sources(
        db,
        [
            (m.contact_id, c.source, c.reference or c.key, logged_at)
            for m, c in zip(merged, candidates, strict=True)
        ],
    )
    return merged


def record_promises(
    db: sqlite_utils.Database, candidates: Sequence[Candidate], merged: Sequence[Merged]
) -> None:
    """The promises to pay made on these contacts, one per log entry: the same call from the
    phone and from the dialer is one entry and one promise (docs/promises.md tracks them).
    The caller holds the write transaction."""
    contact_rows.insert_promises(
        db,
        [
            {
                "source": c.channel,
                "source_id": str(m.contact_id),
                "case_id": c.case_id,
                "agent_id": c.agent_id,
                "visit_id": c.visit_id,
                "amount": str(c.promise_amount),
                "due_date": c.promise_date.isoformat(),
                "made_at": to_iso(c.occurred_at),
            }
            for c, m in zip(candidates, merged, strict=True)
            if c.promise_amount is not None and c.promise_date is not None
        ],
    )


def _row(c: Candidate, logged_at: str, flags: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return {
        "case_id": c.case_id,
        "channel": c.channel,
        "direction": c.direction,
        "occurred_at": to_iso(c.occurred_at.replace(microsecond=0)),
        "agent_id": c.agent_id,
        "agent_name": None if c.agent_id is not None else c.agent_name,
        "outcome": c.outcome,
        "duration_s": c.duration_s,
        "notes": c.notes,
        "visit_id": c.visit_id,
        "external_ref": c.external_ref,
        "natural_key": c.key,
        "source": c.source,
        "flags": list(flags),
        "logged_at": logged_at,
        "logged_by": c.logged_by,
    }


def log_contact(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, case_id: int, body: dict[str, Any]
) -> dict[str, Any]:
    """Log one contact a member of staff made or received, flagged with the channel rules
    it broke (it happened: it is stored); the same contact twice is a 409 naming the entry
    already logged."""
    principal = caller.principal
    assert principal is not None
    if body["channel"] not in LOGGED_CHANNELS:
        raise InvalidInput("home visits enter the log from visit reports", field="channel")
    if body["occurred_at"] > caller.now + CLOCK_TOLERANCE:
        raise InvalidInput(
            "a contact on the log has happened: not in the future", field="occurred_at"
        )
    with transaction(db):
        if case_rows.get_case(db, case_id) is None:
            raise NotFound("no such case")
        _check_visit(db, case_id, body.get("visit_id"))
        agent_id = body.get("agent_id", principal.user_id)
        if body.get("agent_id") is not None and account_rows.get_user(db, agent_id) is None:
            raise InvalidInput("no such user", field="agent_id")
        candidate = Candidate(
            case_id=case_id,
            channel=body["channel"],
            direction=body["direction"],
            occurred_at=body["occurred_at"],
            outcome=body["outcome"],
            agent_id=agent_id,
            agent_name=None,
            source=SOURCE_API,
            reference=caller.request_id,
            visit_id=body.get("visit_id"),
            duration_s=body.get("duration_s"),
            notes=body.get("notes"),
            external_ref=body.get("external_ref"),
            logged_by=principal.user_id,
            promise_amount=body.get("promise_amount"),
            promise_date=body.get("promise_date"),
        )
        (candidate,) = flag_candidates(db, rt, [candidate])
        (merged,) = merge_contacts(db, [candidate], caller.now)
        record_promises(db, [candidate], [merged])
        if not merged.created:
            raise ContactExists(
                "this contact is already on the log",
                field="occurred_at",
                contact_id=merged.contact_id,
            )
        log_action(
            db,
            caller,
            "contact_logged",
            "case",
            case_id,
            {
                "contact_id": merged.contact_id,
                "channel": body["channel"],
                "flags": [f["code"] for f in candidate.flags],
            },
        )
        return {"contact": contact_rows.get_contact(db, merged.contact_id)}


def _check_visit(db: sqlite_utils.Database, case_id: int, visit_id: int | None) -> None:
    if visit_id is None:
        return
    visit = visit_rows.get_visit(db, visit_id)
    if visit is None or visit["case_id"] != case_id:
        raise InvalidInput("not a visit of this case", field="visit_id")


def case_log(db: sqlite_utils.Database, case_id: int) -> list[dict[str, Any]]:
    """Every entry of the case's log, home-visit reports included, oldest first."""
    entries = [{**row, "record_id": None} for row in contact_rows.contacts_of_case(db, case_id)]
    for report in contact_rows.visit_reports_of_case(db, case_id):
        if report["purpose"] not in HOME_PURPOSES or not report["arrived_at"]:
            continue
        entries.append(
            {
                "id": None,
                "case_id": case_id,
                "channel": HOME_VISIT,
                "direction": "outbound",
                "occurred_at": to_iso(parse_iso(report["arrived_at"])),
                "agent_id": report["agent_id"],
                "agent_username": report["agent_username"],
                "agent_name": None,
                "outcome": report["outcome"],
                "duration_s": None,
                "notes": None,  # the report's notes are read through GET /records
                "visit_id": report["visit_id"],
                "external_ref": None,
                "source": SOURCE_VISIT_REPORT,
                "sources": [SOURCE_VISIT_REPORT],
                "record_id": report["id"],
                "flags": [],
                "logged_at": None,
            }
        )
    entries.sort(key=lambda e: (e["occurred_at"], e["id"] or 0))
    return entries


def list_contacts(
    db: sqlite_utils.Database, case_id: int, channel: str | None = None
) -> dict[str, Any]:
    """The case's log, oldest first; optionally one channel."""
    with transaction(db):
        if case_rows.get_case(db, case_id) is None:
            raise NotFound("no such case")
        entries = case_log(db, case_id)
    if channel is not None:
        entries = [e for e in entries if e["channel"] == channel]
    return {"items": entries}


def record_synced_contacts(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    records: list[IncomingRecord],
    case_of: dict[int, int],
) -> None:
    """Log the `contact` records a push stores (`case_of`: case id by visit id, as the push
    read them), in one batch inside the push's transaction: the phone's call and the
    dialer's row for it become one entry."""
    if not records:
        return
    principal = caller.principal
    assert principal is not None
    candidates = [
        Candidate(
            case_id=case_of[r.visit_id],
            channel=r.body["channel"],
            direction=r.body.get("direction") or "outbound",
            occurred_at=r.body["occurred_at"],
            outcome=r.body["outcome"],
            agent_id=principal.user_id,
            agent_name=None,
            source=SOURCE_SYNC,
            reference=r.id,
            visit_id=r.visit_id,
            duration_s=r.body.get("duration_s"),
            notes=r.body.get("notes"),
            external_ref=r.body.get("external_ref"),
            logged_by=principal.user_id,
            promise_amount=r.body.get("promise_amount"),
            promise_date=r.body.get("promise_date"),
        )
        for r in records
    ]
    flagged = flag_candidates(db, rt, candidates)
    record_promises(db, flagged, merge_contacts(db, flagged, caller.now))
