"""Login, token refresh, logout and the public key."""

from flask import Response, request
from flask.views import MethodView

from schemas.auth import LoginSchema, PublicKeySchema, RefreshSchema, TokenPairSchema
from schemas.common import ErrorSchema, field_name
from server.api.context import Blueprint, caller, get_db, runtime
from server.api.errors import domain_error_response
from server.errors import DoorstepError
from server.services import accounts

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Tokens and keys")

# Answers to a login body that could not be read (not JSON, too deep, a field refused).
_UNREADABLE_LOGIN = {"bad_request", "too_deeply_nested", "validation_failed", "invalid_input"}


@blp.route("/login")
class LoginViews(MethodView):
    @blp.doc(security=[])
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, schema=ErrorSchema, description="wrong credentials; revoked device")
    @blp.alt_response(403, schema=ErrorSchema, description="device unknown or someone else's")
    def post(self, body):
        """Exchange a username and password (and, for agents, a device id) for tokens"""
        return accounts.login(
            get_db(), runtime(), caller(), body["username"], body["password"], body.get("device_id")
        )


@blp.after_request
def count_refused_login(response: Response) -> Response:
    """A login refused for its body is a failed attempt for throttling, as a wrong password
    is: otherwise unreadable bodies would be free guesses, never slowed down."""
    if request.endpoint != "auth.LoginViews" or response.status_code not in (400, 422):
        return response
    error = (response.get_json(silent=True) or {}).get("error") or {}
    if error.get("code") not in _UNREADABLE_LOGIN:
        return response  # e.g. the right password from an agent without a device id
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        body = None
    username = body.get("username") if isinstance(body, dict) else None
    name = field_name(username)[:150] if isinstance(username, str) else ""
    try:
        accounts.count_refused_login(get_db(), runtime(), caller(), name)
    except DoorstepError as exc:
        return domain_error_response(exc)
    return response


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
