"""The privacy officer's views: ledger entries, chain verification, staff actions."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.common import StrictSchema, aware_datetime


class ExposureQueryArgsSchema(StrictSchema):
    borrower_id = fields.Int()
    user_id = fields.Int()
    device_id = fields.Str()
    case_id = fields.Int()
    visit_id = fields.Int()
    field = fields.Str(metadata={"description": "entries that served this field"})
    since = aware_datetime()
    until = aware_datetime()
    after = fields.Int(
        load_default=0,
        validate=validate.Range(min=0),
        metadata={"description": "entries after this seq"},
    )
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=1000))


class ExposureSchema(StrictSchema):
    """One ledger entry (FHIR AuditEvent shape: who, what, when, where, why, outcome)."""

    seq = fields.Int()
    occurred_at = fields.Str()
    user_id = fields.Int()
    role = fields.Str()
    device_id = fields.Str(allow_none=True)
    borrower_id = fields.Int()
    case_id = fields.Int(allow_none=True)
    visit_id = fields.Int(allow_none=True)
    fields_ = fields.List(fields.Str(), data_key="fields")
    purpose = fields.Str()
    endpoint = fields.Str()
    request_id = fields.Str()
    outcome = fields.Str()
    prev_hash = fields.Str()
    hash = fields.Str()


class ExposurePageSchema(StrictSchema):
    items = fields.List(fields.Nested(ExposureSchema))
    next_after = fields.Int(allow_none=True)


class ChainReportSchema(StrictSchema):
    """The chain held against its stored checkpoints and the external checkpoint files."""

    intact = fields.Bool(required=True)
    entries_checked = fields.Int()
    head_seq = fields.Int()
    head_hash = fields.Str()
    first_broken_seq = fields.Int(allow_none=True)
    problem = fields.Str(allow_none=True, metadata={"description": "the first finding"})
    findings = fields.List(
        fields.Str(),
        metadata={
            "description": "every sign of tampering: chain, checkpoints (stored or external, "
            "removed, unknown key), keyring, append-only triggers, retention gate"
        },
    )
    checkpoints_checked = fields.Int(metadata={"description": "stored checkpoints checked"})
    signed_seq = fields.Int(
        allow_none=True, metadata={"description": "furthest entry a stored checkpoint matches"}
    )
    external_checkpoints_checked = fields.Int()
    vouched_seq = fields.Int(
        allow_none=True,
        metadata={"description": "furthest entry a checkpoint in the external files matches"},
    )
    vouched_at = fields.Str(allow_none=True, metadata={"description": "when that was signed"})
    unvouched_entries = fields.Int(
        metadata={"description": "entries after vouched_seq, not yet covered by any checkpoint"}
    )
    coverage = fields.Str(metadata={"description": "how far back the verdict vouches, in words"})


class StaffActionQueryArgsSchema(StrictSchema):
    user_id = fields.Int()
    action = fields.Str()
    target_type = fields.Str()
    target_id = fields.Str()
    since = aware_datetime()
    until = aware_datetime()
    after = fields.Int(load_default=0, validate=validate.Range(min=0, max=2**63 - 1))
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=1000))


class StaffActionSchema(StrictSchema):
    id = fields.Int()
    occurred_at = fields.Str()
    user_id = fields.Int(allow_none=True)
    username = fields.Str(allow_none=True)
    role = fields.Str(allow_none=True)
    action = fields.Str()
    target_type = fields.Str(allow_none=True)
    target_id = fields.Str(allow_none=True)
    details = fields.Dict()
    request_id = fields.Str(allow_none=True)
    address = fields.Str(allow_none=True)


class StaffActionPageSchema(StrictSchema):
    items = fields.List(fields.Nested(StaffActionSchema))
    next_after = fields.Int(allow_none=True)
