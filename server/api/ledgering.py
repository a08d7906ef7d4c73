"""The response side of the exposure ledger: an endpoint whose response schema declares
borrower facts runs in one ledger transaction, and its dumped body is accounted for before
it leaves (facts that may not be sent are removed, the others ledgered)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlite_utils
from flask import g, request

from server.api.exposure_plan import DeclarationError, Plan, plan_for, walk
from server.runtime import Caller, Runtime
from server.services import exposure

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


@contextmanager
def ledgered(
    db: sqlite_utils.Database, who: Caller, rt: Runtime, plan: Plan, purpose: Purpose
) -> Iterator[Callable[[Any], Any]]:
    """Run the view in the response's ledger transaction; yields `account(body)`, which
    removes from a dumped body every fact that may not be sent and ledgers the others (also
    reached as g.ledger_account, for Blueprint.response's dump)."""
    role = who.principal.role if who.principal else None
    with exposure.recording(db, who) as recorder:

        def account(body: Any) -> Any:
            found = walk(plan, body)
            written = _written(request.get_json(silent=True)) if found else {}
            sightings = [
                exposure.Sighting(
                    f.subject_kind,
                    f.subject_id,
                    f.fact,
                    echo=isinstance(f.value, str) and f.value in written.get(f.set_by or "", ()),
                )
                for f in found
            ]
            verdicts = exposure.account(db, rt, recorder, sightings, _purpose_of(purpose, role))
            for place, allowed in zip(found, verdicts, strict=True):
                if not allowed:
                    place.container.pop(place.key, None)
            return body

        g.ledger_account = account
        try:
            yield account
        finally:
            g.pop("ledger_account", None)
