"""Login, refresh, logout and the public key."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.common import DEVICE_ID, StrictSchema, aware_datetime


class LoginSchema(StrictSchema):
    username = fields.Str(required=True, validate=validate.Length(min=1, max=150))
    password = fields.Str(required=True, load_only=True, validate=validate.Length(min=1, max=1024))
    device_id = fields.Str(
        validate=DEVICE_ID,
        metadata={
            "description": "agents: the id of a phone registered to them (answered by the "
            "login that enrolled it, or registered by an admin); omitted, with automatic "
            "enrolment, the server enrols this phone under a new id it answers"
        },
    )


class PasswordChangeSchema(StrictSchema):
    username = fields.Str(required=True, validate=validate.Length(min=1, max=150))
    password = fields.Str(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=1024),
        metadata={"description": "the current password, or the one-time code handed over"},
    )
    new_password = fields.Str(
        required=True, load_only=True, validate=validate.Length(min=12, max=1024)
    )


class RefreshSchema(StrictSchema):
    refresh_token = fields.Str(required=True, validate=validate.Length(min=10, max=200))


class TokenUserSchema(StrictSchema):
    id = fields.Int()
    username = fields.Str()
    role = fields.Str()
    display_name = fields.Str()


class TokenPairSchema(StrictSchema):
    access_token = fields.Str(required=True)
    token_type = fields.Str(required=True)
    expires_in = fields.Int(required=True)
    expires_at = aware_datetime(required=True)
    refresh_token = fields.Str(required=True)
    refresh_expires_at = aware_datetime(required=True)
    device_id = fields.Str(
        allow_none=True, metadata={"description": "agents: send it as X-Device-Id, keep it"}
    )
    user = fields.Nested(TokenUserSchema, required=True)


class PublicKeySchema(StrictSchema):
    key_id = fields.Str(required=True)
    algorithm = fields.Str(required=True)
    public_key_pem = fields.Str(required=True)
