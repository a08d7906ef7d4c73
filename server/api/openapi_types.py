"""What the OpenAPI document says beyond apispec's defaults, derived from the same marshmallow
fields the server validates with: tagged unions (a push's records, one schema per kind) and
the constraints of our own field types in standard JSON Schema keywords."""

from __future__ import annotations

from typing import Any

from flask_smorest import Api
from marshmallow import fields

from schemas.common import Money, TaggedUnion, validate_business_day

# Money as a client should send it: decimal text, at most 15 integer and 2 fraction digits
# (at least 0, below 10^15). The server also reads a JSON number; the document asks for text,
# which is exact.
MONEY_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,2})?$"
MONEY_MAX_LENGTH = 18


def tagged_union(self: Any, field: fields.Field, ret: dict, **_kwargs: Any) -> dict:
    """A TaggedUnion as `oneOf` its variants' component schemas, with a discriminator."""
    if not isinstance(field, TaggedUnion):
        return {}
    # Emitted for the Dict it is at load time: an object of anything.
    ret.pop("type", None)
    ret.pop("additionalProperties", None)
    mapping = {
        tag: self.resolve_nested_schema(schema)["$ref"] for tag, schema in field.variants.items()
    }
    return {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": field.tag, "mapping": mapping},
    }


def constraint_keywords(_self: Any, field: fields.Field, ret: dict, **_kwargs: Any) -> dict:
    """Our field types' rules that apispec cannot see, as standard keywords; and a field's
    `document` metadata: keywords for rules checked beyond the schema (the sync engine)."""
    keywords: dict = {}
    if isinstance(field, Money):
        keywords = {"type": "string", "pattern": MONEY_PATTERN, "maxLength": MONEY_MAX_LENGTH}
    elif validate_business_day in field.validators:
        keywords = {"format": "date"}
    return {**keywords, **field.metadata.get("document", {})}


def document_types(api: Api) -> None:
    """Teach the API's document our field types; call before any blueprint is registered."""
    converter = api.ma_plugin.converter
    converter.add_attribute_function(tagged_union)
    converter.add_attribute_function(constraint_keywords)
