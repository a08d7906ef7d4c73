"""Signed ledger checkpoints, their verification, and purge certificates."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.common import PageArgsSchema, StrictSchema
from server.domain.retention import KINDS


class CheckpointCreateSchema(StrictSchema):
    reason = fields.Str(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "why it is taken (default: on demand)"},
    )


class CheckpointSchema(StrictSchema):
    """A signed chain position as stored."""

    id = fields.Int()
    created_at = fields.Str()
    head_seq = fields.Int()
    head_hash = fields.Str()
    key_id = fields.Str()
    signature = fields.Str()
    reason = fields.Str()


class CheckpointPageSchema(StrictSchema):
    items = fields.List(fields.Nested(CheckpointSchema))
    next_after = fields.Int(allow_none=True)


class CheckpointDocumentSchema(StrictSchema):
    """The exportable checkpoint file. The signature covers, joined by newlines:
    version, key_id, head_seq, head_hash, created_at; id, reason and the key are not signed."""

    version = fields.Str(metadata={"description": "doorstep-ledger-checkpoint-v1"})
    id = fields.Int()
    created_at = fields.Str(required=True, metadata={"description": "UTC YYYY-MM-DDTHH:MM:SSZ"})
    head_seq = fields.Int(required=True, strict=True, metadata={"description": "entry signed"})
    head_hash = fields.Str(required=True, metadata={"description": "that entry's hash"})
    key_id = fields.Str(required=True)
    signature = fields.Str(required=True, metadata={"description": "Ed25519, base64url"})
    reason = fields.Str()
    algorithm = fields.Str(validate=validate.OneOf(["Ed25519"]))
    public_key_pem = fields.Str()


class CheckpointVerificationSchema(StrictSchema):
    intact = fields.Bool(required=True)
    problem = fields.Str(
        allow_none=True,
        metadata={"description": "signature | anchor | chain | truncated | head_mismatch"},
    )
    message = fields.Str(allow_none=True)
    signature_valid = fields.Bool()
    checkpoint_head_seq = fields.Int()
    checkpoint_head_hash = fields.Str()
    anchor_seq = fields.Int(allow_none=True, metadata={"description": "where the chain starts"})
    ledger_head_seq = fields.Int(allow_none=True)
    entries_checked = fields.Int()
    first_broken_seq = fields.Int(allow_none=True)


class PurgeCertificateQueryArgsSchema(PageArgsSchema):
    kind = fields.Str(validate=validate.OneOf(KINDS))


class PurgeCertificateSchema(StrictSchema):
    """What one retention run removed of one kind: counts and rule, never values."""

    id = fields.Int()
    created_at = fields.Str()
    kind = fields.Str()
    rule = fields.Str()
    cutoff = fields.Str()
    removed_count = fields.Int()
    checkpoint_id = fields.Int(allow_none=True)
    details = fields.Dict()
    key_id = fields.Str()
    signature = fields.Str()


class PurgeCertificatePageSchema(StrictSchema):
    items = fields.List(fields.Nested(PurgeCertificateSchema))
    next_after = fields.Int(allow_none=True)


class SigningKeySchema(StrictSchema):
    """A public key that signed (or signs) the ledger's checkpoints and certificates."""

    key_id = fields.Str()
    public_key_pem = fields.Str()
    added_at = fields.Str()
    added_by = fields.Str(metadata={"description": "first use | rotate | accept-previous"})
    endorsed_by = fields.Str(
        allow_none=True, metadata={"description": "the retiring key that signed the hand-over"}
    )
    endorsement = fields.Str(allow_none=True, metadata={"description": "Ed25519, base64url"})
    current = fields.Bool(metadata={"description": "the key this server signs with"})
    in_keyring_file = fields.Bool(
        allow_none=True,
        metadata={"description": "listed in the keyring file outside the database too"},
    )


class SigningKeyListSchema(StrictSchema):
    items = fields.List(fields.Nested(SigningKeySchema))
    current_key_id = fields.Str()
