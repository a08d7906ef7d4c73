"""The one writer of exposure-ledger entries: one entry per borrower per response.

A response that carries borrower facts runs inside `recording`: one write transaction in
which the use case runs, its cards are noted (serve_cards hands its entries to `record`),
the dumped body is accounted for (`account`), and the entries are appended in one batch
before the body leaves. What is sent and what is logged therefore agree, and a failure to
log leaves nothing sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from server.clock import to_iso
from server.runtime import Caller, Runtime
from server.storage import ledger as ledger_rows
from server.storage.connection import transaction
from server.storage.flag_reviews import CONTACT_PREFIX
from server.timing import phase

Entry = dict[str, Any]
Owner = tuple[int, int | None, int | None]  # (borrower_id, case_id, visit_id)


@dataclass(slots=True)
class Sighting:
    """The borrower facts of one item of a response, and the id that says whose they are.
    (A value the caller itself wrote in the request is not a sighting: it is handed back.)"""

    subject_kind: str  # borrower | case | visit | record
    subject_id: Any
    facts: AbstractSet[str]  # a set, or a frozenset shared by items alike


class Recorder:
    """The entries of one response, by borrower; appended when the response is ready."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.entries: dict[int, Entry] = {}
        # (kind, id) -> (borrower, case, visit), noted by the use case (note_owners).
        self.owners: dict[tuple[str, Any], Owner] = {}
        # commits_first: where hold_transaction keeps the use case's transaction open.
        self.held: ExitStack | None = None
        self.holding = False

    def add(self, entry: Entry) -> None:
        """Merge an entry: the first for a borrower keeps its visit and purpose."""
        known = self.entries.get(entry["borrower_id"])
        if known is None:
            self.entries[entry["borrower_id"]] = {**entry, "fields": set(entry["fields"])}
        else:
            known["fields"].update(entry["fields"])

    def covered(self, borrower_id: int) -> set[str]:
        """The facts of this borrower this response already ledgers (its card's)."""
        entry = self.entries.get(borrower_id)
        return entry["fields"] if entry is not None else set()


_active: ContextVar[Recorder | None] = ContextVar("doorstep_exposure", default=None)


def _append(db: sqlite_utils.Database, entries: Iterable[Entry]) -> None:
    spelled: dict[frozenset[str], str] = {}  # the cards of one response share field lists
    rows = []
    for entry in entries:
        if not entry["fields"]:
            continue
        fields = frozenset(entry["fields"])
        text = spelled.get(fields)
        if text is None:
            text = spelled[fields] = json.dumps(sorted(fields))
        rows.append({**entry, "fields": text})
    with phase("ledger"):
        ledger_rows.append(db, rows)


def record(db: sqlite_utils.Database, entries: Sequence[Entry]) -> None:
    """Ledger these entries (fields as sets) with the response being recorded, or now when
    no response is (the caller then holds the write transaction)."""
    recorder = _active.get()
    if recorder is None:
        _append(db, entries)
        return
    for entry in entries:
        recorder.add(entry)


def note_owners(kind: str, owners: Mapping[Any, Owner]) -> None:
    """Whose these subjects are (by id as ledger.subjects keys them), read by the use case
    in the response's transaction exactly as ledger.subjects reads them: accounting its
    body reads them no more. Nothing is noted when no response is being recorded."""
    recorder = _active.get()
    if recorder is not None:
        recorder.owners.update({(kind, key): owner for key, owner in owners.items()})


@contextmanager
def recording(
    db: sqlite_utils.Database, caller: Caller, *, commits_first: bool = False
) -> Iterator[Recorder]:
    """One response: the use case, the accounting of its body and the append of its entries
    in one write transaction; on an error nothing is appended.

    `commits_first`: the use case opens and commits its own write transaction (a push
    stores its records); the body is accounted after that commit, with no lock held, and
    its entries are appended in a short write transaction of their own, before the body is
    sent. A failure between the two commits leaves stored records whose answer was never
    sent and so ledgers nothing; the device sends the batch again and hears it as replays."""
    recorder = Recorder(caller)
    token = _active.set(recorder)
    try:
        if commits_first:
            with ExitStack() as held:
                recorder.held = held
                yield recorder
                if recorder.holding:  # the use case kept its transaction (hold_transaction)
                    _append(db, recorder.entries.values())
                    return
            if any(entry["fields"] for entry in recorder.entries.values()):
                with transaction(db):
                    _append(db, recorder.entries.values())
            return
        with transaction(db):
            yield recorder
            _append(db, recorder.entries.values())
    finally:
        _active.reset(token)


def hold_transaction(db: sqlite_utils.Database) -> None:
    """For a use case recorded with commits_first that has nothing worth committing before
    its answer (a push whose every record is a replay): open the write transaction now and
    keep it until the response's entries are appended, one commit instead of two. Its own
    `transaction(db)` blocks then join this one. Elsewhere, nothing."""
    recorder = _active.get()
    if recorder is None or recorder.held is None or recorder.holding:
        return
    recorder.held.enter_context(transaction(db))
    recorder.holding = True


def _owners(
    db: sqlite_utils.Database,
    sightings: Sequence[Sighting],
    known: Mapping[tuple[str, Any], Owner],
) -> list[Owner | None]:
    """(borrower, case, visit) of each sighting's subject (None: nobody known), by its key
    (a record's id in lower case, another subject's int id), in one query per kind for
    those not `known` (noted by the use case)."""
    wanted: dict[str, set[Any]] = {}
    owners: list[Owner | None] = []
    asked: list[tuple[int, str, Any]] = []  # (index, kind, key) of those to read
    for index, sighting in enumerate(sightings):
        kind, subject_id = sighting.subject_kind, sighting.subject_id
        if kind == "record":
            key = subject_id.lower() if isinstance(subject_id, str) else None
        else:
            key = subject_id if type(subject_id) is int else None
        owner = None if key is None else known.get((kind, key))
        owners.append(owner)
        if owner is not None and (kind != "record" or not key.startswith(CONTACT_PREFIX)):
            continue
        if key is not None:
            owners[index] = None
            wanted.setdefault(kind, set()).add(key)
            asked.append((index, kind, key))
    if asked:
        read: dict[tuple[str, Any], Owner] = {}
        for kind, ids in wanted.items():
            if kind == "borrower":
                read.update({(kind, i): (i, None, None) for i in ids})
                continue
            read.update(
                {(kind, i): owner for i, owner in ledger_rows.subjects(db, kind, list(ids)).items()}
            )
        for index, kind, key in asked:
            owners[index] = read.get((kind, key))
    return owners


def account(
    db: sqlite_utils.Database,
    rt: Runtime,
    recorder: Recorder,
    sightings: Sequence[Sighting],
    purpose: str | None,
) -> list[AbstractSet[str]]:
    """For each item's facts found in a body, those that may be sent: facts its cards
    already ledgered, and facts the policy allows the reader for the endpoint's purpose,
    which are then ledgered with this response. Facts of a borrower the store does not
    know, or sent to nobody known, may not be sent."""
    principal = recorder.caller.principal
    if principal is None or not sightings:
        return [set() for _ in sightings]
    owners = _owners(db, sightings, recorder.owners)
    allowed = frozenset(rt.disclosure.allowed_fields(principal.role, purpose))
    occurred_at = to_iso(recorder.caller.now)  # one text for every entry of the response
    sendable: list[AbstractSet[str]] = []
    entries = recorder.entries
    nothing: set[str] = set()
    for sighting, owner in zip(sightings, owners, strict=True):
        if owner is None:
            sendable.append(set())
            continue
        entry = entries.get(owner[0])  # recorder.covered, inline: hundreds of sightings
        covered = entry["fields"] if entry is not None else nothing
        if sighting.facts <= covered:  # nothing new: all of it was ledgered already
            sendable.append(sighting.facts)
            continue
        new = sighting.facts - covered
        granted = new & allowed
        if granted:
            recorder.add(_entry(recorder.caller, owner, granted, purpose, occurred_at))
        sendable.append((sighting.facts & covered) | granted)
    return sendable


def _entry(
    caller: Caller,
    owner: tuple[int, int | None, int | None],
    fields: AbstractSet[str],
    purpose: str | None,
    occurred_at: str,
) -> Entry:
    principal = caller.principal
    assert principal is not None
    borrower_id, case_id, visit_id = owner
    return {
        "occurred_at": occurred_at,
        "user_id": principal.user_id,
        "role": principal.role,
        "device_id": principal.device_id,
        "borrower_id": borrower_id,
        "case_id": case_id,
        "visit_id": visit_id,
        "fields": fields,
        "purpose": purpose or "unspecified",
        "endpoint": caller.endpoint,
        "request_id": caller.request_id,
        "outcome": "served",
    }
