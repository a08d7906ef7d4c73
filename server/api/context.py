"""Per-request plumbing for the thin views: the db, the runtime, the caller, auth."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable
from typing import Any

import flask_smorest
import sqlite_utils
from flask import current_app, g, request
from webargs.flaskparser import FlaskParser

from server.errors import Forbidden
from server.runtime import Caller, Principal, Runtime
from server.services import accounts
from server.storage.connection import open_db

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class StrictParser(FlaskParser):
    """Unknown query parameters are refused like unknown body fields: a typo in a filter
    must not silently widen a result."""

    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {}


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()


def runtime() -> Runtime:
    return current_app.extensions["doorstep"]


def get_db() -> sqlite_utils.Database:
    if "db" not in g:
        g.db = open_db(current_app.config["DATABASE"])
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.conn.close()


def assign_request_id() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    g.now = runtime().clock()


def enforce_rate_limits() -> None:
    """Per address, and per device for phones, before any work is done."""
    limiters = current_app.extensions["doorstep_limits"]
    limiters["address"].take(request.remote_addr or "unknown", g.now)
    device = request.headers.get("X-Device-Id")
    if device:
        limiters["device"].take(device[:128], g.now)


def caller() -> Caller:
    return Caller(
        principal=g.get("principal"),
        request_id=g.request_id,
        endpoint=f"{request.method} {request.url_rule.rule if request.url_rule else request.path}",
        address=request.remote_addr or "unknown",
        now=g.now,
    )


def principal() -> Principal:
    return g.principal


AUTH_DOC = {
    "security": [{"bearerAuth": []}],
    "responses": {
        "401": {
            "description": "Missing, forged or expired token; revoked device (wipe)",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        },
        "403": {
            "description": "The caller's role may not do this",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        },
    },
}


def requires(*roles: str) -> Callable:
    """Authenticate the bearer token and allow only these roles."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            g.principal = accounts.authenticate(
                get_db(),
                runtime(),
                request.headers.get("Authorization"),
                request.headers.get("X-Device-Id"),
                g.now,
            )
            if g.principal.role not in roles:
                raise Forbidden(f"role {g.principal.role} may not do this")
            return view(*args, **kwargs)

        documented = flask_smorest.Blueprint.doc(**AUTH_DOC)(wrapper)
        documented._roles = roles  # read by the role matrix test
        return documented

    return decorator
