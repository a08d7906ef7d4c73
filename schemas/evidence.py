"""Wire shapes of the legal evidence pack."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.common import StrictSchema


class EvidencePackRequestSchema(StrictSchema):
    """Why the pack is built: the legal matter, kept with the case's history and in the pack."""

    reason = fields.Str(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "the legal matter (court, case number, auditor's request)"},
    )
