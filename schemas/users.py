"""Users, agents and devices."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.common import DEVICE_ID, NestedOrNull, StrictSchema, aware_datetime, validate_time_zone
from schemas.role_grants import RoleGrantSchema
from server.domain.roles import ROLES


class UserCreateSchema(StrictSchema):
    username = fields.Str(required=True, validate=validate.Regexp(r"^[a-z0-9._-]{3,64}$"))
    password = fields.Str(
        load_only=True,
        validate=validate.Length(min=12, max=1024),
        metadata={
            "description": "required, except for a privacy officer: an admin only requests "
            "one, whose first password comes with a privacy officer's approval"
        },
    )
    role = fields.Str(required=True, validate=validate.OneOf(ROLES))
    display_name = fields.Str(validate=validate.Length(min=1, max=200))
    badge_number = fields.Str(validate=validate.Length(min=1, max=64))
    region = fields.Str(validate=validate.Length(max=200))
    home_lat = fields.Float(validate=validate.Range(min=-90, max=90))
    home_lon = fields.Float(validate=validate.Range(min=-180, max=180))
    time_zone = fields.Str(validate=validate_time_zone)


class UserPatchSchema(StrictSchema):
    """What an admin may edit; roles never change (an auditor is a new, granted account)."""

    display_name = fields.Str(validate=validate.Length(min=1, max=200))
    badge_number = fields.Str(validate=validate.Length(min=1, max=64))
    region = fields.Str(allow_none=True, validate=validate.Length(max=200))
    home_lat = fields.Float(allow_none=True, validate=validate.Range(min=-90, max=90))
    home_lon = fields.Float(allow_none=True, validate=validate.Range(min=-180, max=180))
    time_zone = fields.Str(validate=validate_time_zone)


class PasswordResetSchema(StrictSchema):
    reason = fields.Str(validate=validate.Length(max=500))


class PasswordResetResultSchema(StrictSchema):
    user_id = fields.Int(dump_only=True)
    temporary_password = fields.Str(
        allow_none=True,
        dump_only=True,
        metadata={
            "description": "answered once: the user must replace it at POST /auth/password "
            "before logging in; null for a privacy officer (see grant)"
        },
    )
    expires_at = aware_datetime(allow_none=True, dump_only=True)
    grant = NestedOrNull(
        RoleGrantSchema,
        dump_only=True,
        metadata={"description": "a privacy officer's reset awaits another privacy officer"},
    )


class AgentProfileSchema(StrictSchema):
    badge_number = fields.Str()
    region = fields.Str(allow_none=True)
    home_lat = fields.Float(allow_none=True)
    home_lon = fields.Float(allow_none=True)
    time_zone = fields.Str()


class UserSchema(StrictSchema):
    id = fields.Int(dump_only=True)
    username = fields.Str(dump_only=True)
    role = fields.Str(dump_only=True)
    display_name = fields.Str(dump_only=True)
    active = fields.Bool(dump_only=True)
    created_at = fields.Str(dump_only=True)
    agent = NestedOrNull(AgentProfileSchema, dump_only=True)


class UserQueryArgsSchema(StrictSchema):
    role = fields.Str(validate=validate.OneOf(ROLES))


class DeviceSchema(StrictSchema):
    id = fields.Str(dump_only=True)
    user_id = fields.Int(dump_only=True)
    username = fields.Str(dump_only=True)
    status = fields.Str(dump_only=True)
    registered_at = fields.Str(dump_only=True)
    last_seen_at = fields.Str(allow_none=True, dump_only=True)
    revoked_at = fields.Str(allow_none=True, dump_only=True)
    revoke_reason = fields.Str(allow_none=True, dump_only=True)
    wipe_confirmed_at = fields.Str(allow_none=True, dump_only=True)


class DeviceQueryArgsSchema(StrictSchema):
    user_id = fields.Int()


class DeviceRegisterSchema(StrictSchema):
    device_id = fields.Str(
        validate=DEVICE_ID,
        metadata={"description": "the phone's id, such as an asset tag; omitted: one is minted"},
    )


class DeviceRevokeSchema(StrictSchema):
    reason = fields.Str(validate=validate.Length(max=500))


class UserStatusChangeSchema(StrictSchema):
    reason = fields.Str(validate=validate.Length(max=500))


class MeSchema(StrictSchema):
    user = fields.Nested(UserSchema, required=True)
    device_id = fields.Str(allow_none=True)
    token_expires_at = aware_datetime()
