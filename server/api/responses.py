"""Responses whose shape depends on who asks: one allow-listed schema per role."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import flask_smorest
from flask import g, jsonify
from marshmallow import Schema

from server.api.context import caller, get_db, runtime
from server.api.exposure_plan import DeclarationError, plan_for
from server.api.ledgering import LEDGER_DOC, Purpose, ledgered


def response_by_role(
    status: int,
    by_role: Mapping[str, type[Schema]],
    description: str,
    *,
    purpose: Purpose | None = None,
) -> Callable:
    """Dump the view's result with the schema of the caller's role, so what each role
    receives is an allow-list of its own, never another role's schema with fields removed.
    Borrower facts in it are ledgered as by Blueprint.response. Goes below `requires` (the
    caller must be known)."""
    schemas = {role: schema() for role, schema in by_role.items()}
    plans = {role: plan_for(schema) for role, schema in schemas.items()}
    if any(plans.values()) != bool(purpose):
        raise DeclarationError("purpose= is needed exactly when a role's schema carries facts")

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            role = g.principal.role
            plan = plans[role]
            if plan is None:
                response = jsonify(schemas[role].dump(view(*args, **kwargs)))
            else:
                with ledgered(get_db(), caller(), runtime(), plan, purpose or {}) as account:
                    response = jsonify(account(schemas[role].dump(view(*args, **kwargs))))
            response.status_code = status
            return response

        # Both shapes are documented; they share most fields, so `anyOf`, not `oneOf`.
        choices = list(dict.fromkeys(by_role.values()))
        content = {"application/json": {"schema": {"anyOf": choices}}}
        responses = {status: {"description": description, "content": content}}
        documented = flask_smorest.Blueprint.doc(responses=responses)(wrapper)
        if any(plans.values()):
            documented = flask_smorest.Blueprint.doc(**{LEDGER_DOC: purpose})(documented)
        return documented

    return decorator
