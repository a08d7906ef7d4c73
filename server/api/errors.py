"""The one place where failures become HTTP responses, all in one JSON shape:

{"error": {"code": "...", "message": "...", "field": "..." | null, "details": {...}},
 "request_id": "..."}
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from flask import Flask, Response, g, jsonify
from werkzeug.exceptions import HTTPException

from server import errors

log = logging.getLogger(__name__)

STATUS: dict[type[errors.DoorstepError], int] = {
    errors.InvalidInput: 422,
    errors.NotAuthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PreconditionRequired: 428,
    errors.DispatchRefused: 422,
    errors.RateLimited: 429,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
}

# Codes for plain HTTP errors raised by Flask/werkzeug/webargs themselves.
HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "version_conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    428: "version_required",
    429: "rate_limited",
}


def status_of(exc: errors.DoorstepError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_body(code: str, message: str, field: str | None = None, details: Any = None) -> dict:
    return {
        "error": {"code": code, "message": message, "field": field, "details": details or {}},
        "request_id": getattr(g, "request_id", None),
    }


def _first_field(messages: Any, prefix: str = "") -> str | None:
    """The dotted path of the first offending field in a marshmallow error tree."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key in ("json", "query", "headers", "form", "files", "view_args"):
                return _first_field(value, prefix)
            path = f"{prefix}.{key}" if prefix else str(key)
            deeper = _first_field(value, path)
            return deeper or path
    return prefix or None


def domain_error_response(exc: errors.DoorstepError) -> Response:
    """The response for a domain failure."""
    response = jsonify(error_body(exc.code, exc.message, exc.field, exc.details))
    response.status_code = status_of(exc)
    if isinstance(exc, errors.RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(errors.DoorstepError, domain_error_response)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        data = getattr(exc, "data", None) or {}
        messages = data.get("messages")
        if messages is not None:
            field = _first_field(messages)
            body = error_body(
                "validation_failed",
                f"invalid input{f' in {field}' if field else ''}",
                field,
                {"fields": messages},
            )
        else:
            body = error_body(HTTP_CODES.get(status, "http_error"), exc.description or exc.name)
        response = jsonify(body)
        response.status_code = status
        # Keep what the error says besides its body, e.g. `Allow` on a 405 (RFC 9110).
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(RecursionError)
    def too_deep(exc: RecursionError):
        # The JSON parser gives up on absurd nesting; that is the client's doing.
        response = jsonify(error_body("too_deeply_nested", "the JSON body is nested too deeply"))
        response.status_code = 400
        return response

    @app.errorhandler(OverflowError)
    def out_of_range(exc: OverflowError):
        # An integer beyond SQLite's 64-bit range reached a query: bad input, not a crash.
        response = jsonify(error_body("invalid_input", "a number is out of range"))
        response.status_code = 422
        return response

    @app.errorhandler(sqlite3.IntegrityError)
    def integrity(exc: sqlite3.IntegrityError):
        # A UNIQUE constraint is the store's last word on "already exists" (a check that lost
        # a race, or one a service lacks): the client's conflict, not a crash. Any other
        # integrity failure is a server bug.
        reason, _, columns = str(exc).partition(": ")
        if reason != "UNIQUE constraint failed":
            return unexpected(exc)
        field = columns.split(",")[0].strip().rpartition(".")[2] or None
        response = jsonify(error_body("conflict", f"{field or 'value'} already taken", field))
        response.status_code = 409
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        response = jsonify(error_body("internal_error", "internal server error"))
        response.status_code = 500
        return response
