"""Privacy-officer access: requested by an admin, granted by a privacy officer."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.common import StrictSchema, aware_datetime

GRANT_STATUSES = ("pending", "approved", "rejected")


class RoleGrantSchema(StrictSchema):
    id = fields.Int(dump_only=True)
    user_id = fields.Int(dump_only=True)
    username = fields.Str(dump_only=True)
    role = fields.Str(dump_only=True)
    kind = fields.Str(
        dump_only=True,
        metadata={"description": "privacy_officer_access (a new officer) | privacy_officer_reset"},
    )
    status = fields.Str(dump_only=True, metadata={"description": " | ".join(GRANT_STATUSES)})
    requested_by = fields.Int(allow_none=True, dump_only=True)
    requested_by_username = fields.Str(allow_none=True, dump_only=True)
    requested_at = fields.Str(dump_only=True)
    reason = fields.Str(allow_none=True, dump_only=True)
    decided_by = fields.Int(allow_none=True, dump_only=True)
    decided_by_username = fields.Str(allow_none=True, dump_only=True)
    decided_at = fields.Str(allow_none=True, dump_only=True)
    decision_note = fields.Str(allow_none=True, dump_only=True)


class RoleGrantApprovalSchema(RoleGrantSchema):
    one_time_code = fields.Str(
        dump_only=True,
        metadata={
            "description": "answered once, to the approver only: hand it to the officer, who "
            "replaces it at POST /auth/password before the first login"
        },
    )
    code_expires_at = aware_datetime(dump_only=True)


class RoleGrantQueryArgsSchema(StrictSchema):
    status = fields.Str(validate=validate.OneOf(GRANT_STATUSES))


class RoleGrantDecisionSchema(StrictSchema):
    note = fields.Str(validate=validate.Length(max=500))
