"""Per-request plumbing for the thin views: the db, the runtime, the caller, auth."""

from __future__ import annotations

import functools
import os
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import flask_smorest
import sqlite_utils
from flask import current_app, g, request
from flask.views import MethodView
from webargs.flaskparser import FlaskParser

from server.api.ledgering import LEDGER_DOC, Purpose, ledger_plan, ledgered
from server.errors import Forbidden, NotAuthenticated
from server.runtime import Caller, Principal, Runtime
from server.services import accounts
from server.storage.connection import open_db

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class StrictParser(FlaskParser):
    """Unknown query parameters are refused like unknown body fields: a typo in a filter
    must not silently widen a result."""

    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {}


# Errors any operation may answer, documented on each so a client can plan for them (the
# `default` response says nothing about which statuses occur). Values name flask-smorest's
# response components, all in the one error shape.
_EVERY_OPERATION = {"429": "TOO_MANY_REQUESTS"}  # rate limits (per address, or per caller)
_WITH_PATH_PARAMETERS = {"404": "NOT_FOUND"}  # no such resource, or a path that names none
_WITH_BODY = {"413": "REQUEST_ENTITY_TOO_LARGE"}  # beyond MAX_CONTENT_LENGTH
_WITH_JSON_BODY = {"400": "BAD_REQUEST"}  # not JSON at all


def _parses_json(apidoc: dict) -> bool:
    return any(p["in"] == "json" for p in apidoc.get("arguments", {}).get("parameters", []))


def _document_common_errors(view: Callable, *, has_path_parameters: bool) -> Callable:
    """`view` with the common errors it does not document yet (read from flask-smorest's
    doc info, so this runs after the view's own decorators)."""
    apidoc = getattr(view, "_apidoc", {})
    documented = {
        str(status)
        for source in (apidoc.get("response", {}), apidoc.get("arguments", {}))
        for status in source.get("responses", {})
    } | {str(status) for status in apidoc.get("manual_doc", {}).get("responses", {})}
    common = dict(_EVERY_OPERATION)
    if has_path_parameters:
        common.update(_WITH_PATH_PARAMETERS)
    if _parses_json(apidoc) or "requestBody" in apidoc.get("manual_doc", {}):
        common.update(_WITH_BODY)
    if _parses_json(apidoc):
        common.update(_WITH_JSON_BODY)
    missing = {status: ref for status, ref in common.items() if status not in documented}
    return flask_smorest.Blueprint.doc(responses=missing)(view) if missing else view


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()

    def response(
        self,
        status_code: Any,
        schema: Any = None,
        *,
        purpose: Purpose | None = None,
        commits_first: bool = False,
        **kwargs: Any,
    ) -> Callable:
        """As flask-smorest's; and when the schema declares borrower facts, the view runs in
        a ledger transaction and the dumped body is accounted for before it is sent
        (`purpose`: why this endpoint serves them, written in each entry). `commits_first`:
        the view commits its own write transaction, and the body is accounted after it with
        no lock held, its entries appended in a short transaction of their own (a push:
        a second device's push stores while the first one's answer is written)."""
        register = super().response(status_code, schema, **kwargs)

        def decorator(view: Callable) -> Callable:
            plan = ledger_plan(schema, purpose, f"{self.name}.{view.__qualname__}")
            registered = register(view)
            if plan is None:
                return registered

            @functools.wraps(registered)
            def wrapper(*args: Any, **kw: Any) -> Any:
                with ledgered(
                    get_db(), caller(), runtime(), plan, purpose, commits_first=commits_first
                ):
                    return registered(*args, **kw)

            return flask_smorest.Blueprint.doc(**{LEDGER_DOC: purpose})(wrapper)

        return decorator

    def _prepare_response_content(self, data: Any) -> Any:
        account = g.get("ledger_account")
        return super()._prepare_response_content(account(data) if account else data)

    def arguments(self, schema: Any, *, location: str = "json", **kwargs: Any) -> Callable:
        """As flask-smorest's, but a JSON body with no required field is documented as
        optional: an absent body reads as {} and is accepted, so saying "required" is false."""
        if location == "json" and "required" not in kwargs:
            fields = (schema() if isinstance(schema, type) else schema).load_fields.values()
            kwargs["required"] = any(field.required for field in fields)
        return super().arguments(schema, location=location, **kwargs)

    def route(self, rule: str, *, parameters: list | None = None, **options: Any) -> Callable:
        """As flask-smorest's, and each operation also documents the errors every operation
        of its kind can answer (429; 404 with path parameters; 413 with a body, 400 with a
        JSON one)."""
        register = super().route(rule, parameters=parameters, **options)

        def decorator(view: Callable) -> Callable:
            document = functools.partial(_document_common_errors, has_path_parameters="<" in rule)
            if isinstance(view, type) and issubclass(view, MethodView):
                for method in view.methods or ():
                    setattr(view, method.lower(), document(getattr(view, method.lower())))
                return register(view)
            return register(document(view))

        return decorator


def runtime() -> Runtime:
    return current_app.extensions["doorstep"]


def get_db() -> sqlite_utils.Database:
    """The request's connection: the thread's own, kept open between its requests.

    Opening costs the pragmas, and closing the last connection to a WAL store checkpoints
    and removes the WAL file (fsyncs); a worker thread keeping its connection pays neither
    per request. A connection is never shared between threads or carried into a forked
    process, it is left with no transaction open at the end of each request, and a store
    whose file was replaced (`flask restore`) is opened anew."""
    if "db" not in g:
        kept = current_app.extensions.setdefault("doorstep_connections", threading.local())
        path = current_app.config["DATABASE"]
        identity = (os.getpid(), path, _file_identity(path))
        db = getattr(kept, "db", None)
        if db is None or kept.identity != identity:
            if db is not None and kept.identity[0] == os.getpid():
                db.conn.close()
            db = open_db(path)
            kept.db, kept.identity = db, (os.getpid(), path, _file_identity(path))
        g.db = db
    return g.db


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def close_db(_exc: BaseException | None = None) -> None:
    """End of request: roll back whatever a failure left open; the connection stays."""
    db = g.pop("db", None)
    if db is not None and db.conn.in_transaction:
        db.conn.execute("ROLLBACK")


def assign_request_id() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    g.now = runtime().clock()


def _is_protected() -> bool:
    """Whether this request's operation authenticates its caller with requires()."""
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    func = getattr(view_class, request.method.lower(), None) if view_class else view
    return hasattr(func, "_roles")


def enforce_rate_limits() -> None:
    """Requests that bring no token to check are counted per client address before any work.

    A token for a protected operation is counted once it verified (requires()), per phone or
    staff user, never by a header an unauthenticated caller can set: a stranger sending a
    victim's X-Device-Id spends only its own address's allowance.
    """
    if request.headers.get("Authorization") and _is_protected():
        return
    _take_address_allowance()


def _take_address_allowance() -> None:
    limiters = current_app.extensions["doorstep_limits"]
    limiters["address"].take(request.remote_addr or "unknown", g.now)


def _take_principal_allowance(who: Principal) -> None:
    limiters = current_app.extensions["doorstep_limits"]
    key = f"device:{who.device_id}" if who.device_id else f"user:{who.user_id}"
    limiters["principal"].take(key, g.now)


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


# Security requirements. An agent's token is bound to its phone, so agents also send the
# phone's id in X-Device-Id (the `deviceId` scheme, declared in server/api/__init__.py);
# other roles need not.
BEARER = {"bearerAuth": []}
BEARER_AND_DEVICE = {"bearerAuth": [], "deviceId": []}


def security_for(roles: tuple[str, ...]) -> list[dict[str, list]]:
    """The OpenAPI security requirement of an operation open to these roles."""
    if "agent" not in roles:
        return [dict(BEARER)]
    if set(roles) == {"agent"}:
        return [dict(BEARER_AND_DEVICE)]
    return [dict(BEARER_AND_DEVICE), dict(BEARER)]  # agents with their device id, others not


AUTH_RESPONSES = {
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
            try:
                g.principal = accounts.authenticate(
                    get_db(),
                    runtime(),
                    request.headers.get("Authorization"),
                    request.headers.get("X-Device-Id"),
                    g.now,
                )
            except NotAuthenticated:
                _take_address_allowance()  # a refused token counts as no token
                raise
            _take_principal_allowance(g.principal)
            if g.principal.role not in roles:
                raise Forbidden(f"role {g.principal.role} may not do this")
            return view(*args, **kwargs)

        documented = flask_smorest.Blueprint.doc(security=security_for(roles), **AUTH_RESPONSES)(
            wrapper
        )
        documented._roles = roles  # read by the role matrix test
        return documented

    return decorator
