"""The body of an import (cases, payments, contacts): JSON Lines or CSV, as one text document
that the import services read line by line."""

from __future__ import annotations

from typing import Any

from flask import request

from server.errors import InvalidInput, UnsupportedMediaType

FORMATS = {
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/json-lines": "jsonl",
    "text/csv": "csv",
}
# The OpenAPI request body of every import operation.
IMPORT_BODY = {
    "required": True,
    "content": {
        "application/x-ndjson": {"schema": {"type": "string"}},
        "text/csv": {"schema": {"type": "string"}},
    },
}


def import_lines(args: dict[str, Any]) -> tuple[list[str], str]:
    """The request's lines and their format: `?format=` first, else the Content-Type; 415
    for neither JSON Lines nor CSV, 422 for an empty body."""
    fmt = args.get("format") or FORMATS.get(request.mimetype)
    if fmt is None:
        raise UnsupportedMediaType(
            "send application/x-ndjson or text/csv (or ?format=jsonl|csv)",
            field="Content-Type",
        )
    text = request.get_data(as_text=True)
    if not text.strip():
        raise InvalidInput("the import body is empty", field="body")
    return text.splitlines(), fmt
