"""A console page that shows borrower facts goes through the API's ledger layer: the use
case runs inside the response's ledger transaction, its result is dumped by a response
schema and accounted for (facts the role may not see removed, the others ledgered with the
page's purpose, the signed-in user, the request id and the console endpoint), and only that
dumped body reaches the template."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema

from server.api.context import caller, get_db, runtime
from server.api.ledgering import Purpose, accounted, ledger_plan, ledgered

_PLANS: dict[type[Schema], Any] = {}


def _plan(schema: Schema, purpose: Purpose | None) -> Any:
    """The schema's fact plan; as in the API, facts need a purpose and a purpose needs facts."""
    kind = type(schema)
    if kind not in _PLANS:
        _PLANS[kind] = ledger_plan(schema, purpose, f"console {kind.__name__}")
    return _PLANS[kind]


def ledgered_body(schema: Schema, purpose: Purpose | None, use_case: Callable[[], Any]) -> dict:
    """Run `use_case` in a ledger transaction and return its result as `schema` dumps and
    the ledger layer accounts for it; a schema without facts is only dumped."""
    plan = _plan(schema, purpose)
    if plan is None or purpose is None:
        return schema.dump(use_case())
    with ledgered(get_db(), caller(), runtime(), plan, purpose):
        return accounted(schema, use_case())
