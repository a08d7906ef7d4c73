"""The served OpenAPI document's schemas as JSON Schema validators (jsonschema_rs)."""

from __future__ import annotations

from typing import Any

import jsonschema_rs

REF = "#/components/schemas/"


def as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's dialect as JSON Schema: `nullable` becomes a null alternative."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: as_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        return {"anyOf": [{"type": "null"}, node]}
    return node


def validator(document: dict, schema: dict) -> jsonschema_rs.Draft202012Validator:
    """A validator of `schema`, its $refs resolved in the document's components."""
    root = {"components": as_json_schema(document["components"]), **as_json_schema(schema)}
    return jsonschema_rs.Draft202012Validator(root, validate_formats=True)


def push_schema(document: dict) -> dict:
    """The push request body's schema (a component)."""
    body = document["paths"]["/api/v1/sync/push"]["post"]["requestBody"]
    name = body["content"]["application/json"]["schema"]["$ref"].removeprefix(REF)
    return document["components"]["schemas"][name]
