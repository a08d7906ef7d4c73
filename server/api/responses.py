"""Responses whose shape depends on who asks (one allow-listed schema per role), and the
other representations of a response: CSV files and printable pages."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import flask_smorest
from flask import Response, g, jsonify, render_template
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


# Printed pages carry their own CSS and nothing else: no scripts, no remote resources.
HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def csv_file(body: str | Iterable[str], filename: str, next_after: int | None) -> Response:
    """A CSV download (text, or lines streamed as they are written); `next_after`: more
    rows remain, asked for again with after=."""
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    if next_after is not None:
        response.headers["X-Next-After"] = str(next_after)
    return response


def html_page(template: str, **context: Any) -> Response:
    """A printable page rendered from a template (autoescaped), under a CSP that allows
    nothing but its inline CSS."""
    response = Response(render_template(template, **context), mimetype="text/html")
    response.headers["Content-Security-Policy"] = HTML_POLICY
    return response
