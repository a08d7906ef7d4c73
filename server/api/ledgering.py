"""The response side of the exposure ledger: an endpoint whose response schema declares
borrower facts runs in one ledger transaction, and its dumped body is accounted for before
it leaves (facts that may not be sent are removed, the others ledgered)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlite_utils
from flask import g, request

from server.api.exposure_plan import (
    DeclarationError,
    Found,
    Plan,
    carries,
    echoes,
    plan_for,
    sighted,
    walk,
)
from server.runtime import Caller, Runtime
from server.services import exposure
from server.timing import phase

# The purpose an endpoint serves borrower facts for: one for every role, or one per role
# (a role left out may receive no fact beyond its cards).
Purpose = str | Mapping[str, str]
LEDGER_DOC = "x-ledger-purpose"


def ledger_plan(schema: Any, purpose: Purpose | None, where: str) -> Plan | None:
    """The schema's fact plan; an endpoint whose schema carries facts must declare why."""
    plan = plan_for(schema)
    if plan is not None and not purpose:
        raise DeclarationError(f"{where}: borrower facts in the response need a purpose=")
    if plan is None and purpose:
        raise DeclarationError(f"{where}: purpose= given but the response carries no fact")
    return plan


def accounted(schema: Any, data: Any) -> Any:
    """A body sent as something other than JSON (a CSV file, a printed page): dumped by the
    endpoint's response schema and accounted for exactly as its JSON would be, so the page is
    rendered only from what may be sent, and that is ledgered. Only inside a ledgered view:
    a rendering that skipped the ledger would be a disclosure nobody recorded."""
    account = g.get("ledger_account")
    if account is None:
        raise DeclarationError("accounted() outside a ledgered response")
    return account(schema.dump(data))


def _purpose_of(purpose: Purpose, role: str | None) -> str | None:
    return purpose if isinstance(purpose, str) else purpose.get(role or "")


def _written(body: Any) -> dict[str, set[str]]:
    """The text values of a JSON request body, by the name they were sent under."""
    written: dict[str, set[str]] = {}
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                if isinstance(value, str):
                    written.setdefault(key, set()).add(value)
                else:
                    stack.append(value)
    return written


def _echo(item: Found, key: str, set_by: str | None, written: dict[str, set[str]]) -> bool:
    """The value is what the caller sent, in this request, in the field that writes it."""
    value = item.container.get(key)
    return isinstance(value, str) and value in written.get(set_by or "", ())


def account_found(
    db: sqlite_utils.Database,
    rt: Runtime,
    recorder: exposure.Recorder,
    plan: Plan,
    body: Any,
    purpose: str | None,
    written: Callable[[], dict[str, set[str]]],
) -> Any:
    """Remove from a dumped body every fact that may not be sent and ledger the others,
    item by item (walk); `written()`: the request's own values, read only when a fact of
    the body may echo one (a push's body is large, and none of its answer's facts is
    written by it)."""
    found = walk(plan, body)
    if not found:
        return body
    echoing = any(by for item in found for _, _, by in item.places)
    values = written() if echoing else {}
    sightings = [
        exposure.Sighting(
            item.subject_kind,
            item.subject_id,
            {fact for key, fact, by in item.places if not _echo(item, key, by, values)}
            if values
            else {fact for _, fact, _ in item.places},  # nothing can be an echo
        )
        for item in found
    ]
    allowed = exposure.account(db, rt, recorder, sightings, purpose)
    for item, sighting, sendable in zip(found, sightings, allowed, strict=True):
        if sendable is sighting.facts:
            continue  # all of it may be sent (account hands back the same set)
        for key, fact, _ in item.places:
            if fact in sighting.facts and fact not in sendable:
                item.container.pop(key, None)
    return body


def account_sighted(
    db: sqlite_utils.Database,
    rt: Runtime,
    recorder: exposure.Recorder,
    plan: Plan,
    body: Any,
    purpose: str | None,
) -> Any:
    """account_found for a plan none of whose facts can echo the request: the items of one
    subject with the same facts (sighted) are asked about once. exposure.account answers
    such items alike wherever they come in one body (what it grants is the policy's, and
    the facts it ledgers only grow by what the policy grants), and the first of them is
    asked at the place of the first, so the same entries are ledgered in the same order
    (tests/unit/test_exposure_sighted.py holds the two to the same bodies and entries)."""
    groups = sighted(plan, body)
    if not groups:
        return body
    sightings = [
        exposure.Sighting(group.subject_kind, group.subject_id, group.facts) for group in groups
    ]
    allowed = exposure.account(db, rt, recorder, sightings, purpose)
    # The places that carry a fact are read before any is removed (a value may be shared
    # by two places of a body), as walk read them.
    removed = [
        (container, key)
        for group, sendable in zip(groups, allowed, strict=True)
        if sendable is not group.facts  # (else all of it may be sent: the same set back)
        for container, places in group.items
        for key, fact, _ in places
        if fact not in sendable and carries(container.get(key))
    ]
    for container, key in removed:
        container.pop(key, None)
    return body


@contextmanager
def ledgered(
    db: sqlite_utils.Database,
    who: Caller,
    rt: Runtime,
    plan: Plan,
    purpose: Purpose,
    *,
    commits_first: bool = False,
) -> Iterator[Callable[[Any], Any]]:
    """Run the view in the response's ledger transaction; yields `account(body)`, which
    removes from a dumped body every fact that may not be sent and ledgers the others (also
    reached as g.ledger_account, for Blueprint.response's dump). `commits_first`: the view
    commits its own write transaction and the entries are appended after it
    (exposure.recording)."""
    role = who.principal.role if who.principal else None
    may_echo = echoes(plan)  # no fact of the plan is written by a request field: none can echo
    reader = _purpose_of(purpose, role)
    with exposure.recording(db, who, commits_first=commits_first) as recorder:

        def account(body: Any) -> Any:
            with phase("ledger"):
                if not may_echo:
                    return account_sighted(db, rt, recorder, plan, body, reader)
                return account_found(
                    db,
                    rt,
                    recorder,
                    plan,
                    body,
                    reader,
                    lambda: _written(request.get_json(silent=True)),
                )

        g.ledger_account = account
        try:
            yield account
        finally:
            g.pop("ledger_account", None)
