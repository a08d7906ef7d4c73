"""Responses whose shape depends on who asks: one allow-listed schema per role."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import flask_smorest
from flask import g, jsonify
from marshmallow import Schema


def response_by_role(
    status: int, by_role: Mapping[str, type[Schema]], description: str
) -> Callable:
    """Dump the view's result with the schema of the caller's role, so what each role
    receives is an allow-list of its own, never another role's schema with fields removed.
    Goes below `requires` (the caller must be known)."""
    schemas = {role: schema() for role, schema in by_role.items()}

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = view(*args, **kwargs)
            response = jsonify(schemas[g.principal.role].dump(result))
            response.status_code = status
            return response

        # Both shapes are documented; they share most fields, so `anyOf`, not `oneOf`.
        choices = list(dict.fromkeys(by_role.values()))
        content = {"application/json": {"schema": {"anyOf": choices}}}
        responses = {status: {"description": description, "content": content}}
        return flask_smorest.Blueprint.doc(responses=responses)(wrapper)

    return decorator
