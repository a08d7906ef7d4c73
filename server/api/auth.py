"""Login, token refresh, logout and the public key."""

from flask.views import MethodView

from schemas.auth import (
    LoginSchema,
    PasswordChangeSchema,
    PublicKeySchema,
    RefreshSchema,
    TokenPairSchema,
)
from schemas.common import ErrorSchema
from server.api.context import Blueprint, caller, get_db, runtime
from server.services import accounts

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Tokens and keys")


@blp.route("/login")
class LoginViews(MethodView):
    @blp.doc(security=[])
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, schema=ErrorSchema, description="wrong credentials; revoked device")
    @blp.alt_response(
        403, schema=ErrorSchema, description="device not yours; password_change_required"
    )
    def post(self, body):
        """Exchange a username and password (and, for agents, a device id) for tokens"""
        return accounts.login(
            get_db(), runtime(), caller(), body["username"], body["password"], body.get("device_id")
        )


@blp.route("/password")
class PasswordViews(MethodView):
    @blp.doc(security=[])
    @blp.arguments(PasswordChangeSchema)
    @blp.response(204)
    @blp.alt_response(401, schema=ErrorSchema, description="wrong username or password")
    def post(self, body):
        """Set a new password (a handed-over one must be); every session of the account ends"""
        accounts.change_password(
            get_db(),
            runtime(),
            caller(),
            body["username"],
            body["password"],
            body["new_password"],
        )


@blp.route("/refresh")
class RefreshViews(MethodView):
    @blp.doc(security=[])
    @blp.arguments(RefreshSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, schema=ErrorSchema, description="refused, reused, or device revoked")
    def post(self, body):
        """Rotate a refresh token; re-using a spent one revokes the whole session family"""
        return accounts.refresh(get_db(), runtime(), caller(), body["refresh_token"])


@blp.route("/logout")
class LogoutViews(MethodView):
    @blp.doc(security=[])
    @blp.arguments(RefreshSchema)
    @blp.response(204)
    def post(self, body):
        """Revoke the session family a refresh token belongs to"""
        accounts.logout(get_db(), caller(), body["refresh_token"])


@blp.route("/public-key")
class PublicKeyViews(MethodView):
    @blp.doc(security=[])
    @blp.response(200, PublicKeySchema)
    def get(self):
        """The server's Ed25519 public key: verifies tokens, receipts and checkpoints"""
        keys = runtime().keys
        return {"key_id": keys.key_id, "algorithm": "Ed25519", "public_key_pem": keys.public_pem()}
