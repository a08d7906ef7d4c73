"""Users, agents, devices, and the caller's own profile."""

from flask import request
from flask.views import MethodView

from schemas.common import ErrorSchema
from schemas.users import (
    DeviceQueryArgsSchema,
    DeviceRegisterSchema,
    DeviceRevokeSchema,
    DeviceSchema,
    MeSchema,
    PasswordResetResultSchema,
    PasswordResetSchema,
    UserCreateSchema,
    UserPatchSchema,
    UserQueryArgsSchema,
    UserSchema,
    UserStatusChangeSchema,
)
from server.api.context import (
    BEARER_AND_DEVICE,
    Blueprint,
    caller,
    get_db,
    principal,
    requires,
    runtime,
)
from server.services import accounts, devices
from server.storage import accounts as account_rows

blp = Blueprint("users", __name__, url_prefix="/api/v1", description="Users and devices")


def _user_out(row: dict) -> dict:
    agent = None
    if row["role"] == "agent":
        agent = {k: row[k] for k in ("badge_number", "region", "home_lat", "home_lon", "time_zone")}
    return {**row, "active": bool(row["active"]), "agent": agent}


@blp.route("/users")
class UserViews(MethodView):
    @requires("admin", "dispatcher")
    @blp.arguments(UserQueryArgsSchema, location="query")
    @blp.response(200, UserSchema(many=True))
    def get(self, args):
        """List users (dispatchers use it to find agents)"""
        return [_user_out(u) for u in account_rows.list_users(get_db(), args.get("role"))]

    @requires("admin")
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    @blp.alt_response(409, schema=ErrorSchema, description="username already taken")
    def post(self, body):
        """Create a user; agents need a badge number"""
        return _user_out(accounts.create_user(get_db(), runtime(), caller(), body))


@blp.route("/users/<int:user_id>")
class UserByIdViews(MethodView):
    @requires("admin", "dispatcher")
    @blp.response(200, UserSchema)
    def get(self, user_id):
        """One user"""
        return _user_out(accounts.get_user(get_db(), user_id))

    @requires("admin")
    @blp.arguments(UserPatchSchema)
    @blp.response(200, UserSchema)
    @blp.alt_response(409, schema=ErrorSchema, description="badge number taken")
    def patch(self, body, user_id):
        """Edit a user's display name and, for agents, badge, region, home base, time zone"""
        return _user_out(accounts.update_user(get_db(), caller(), user_id, body))


@blp.route("/users/<int:user_id>/password-reset")
class UserPasswordResetViews(MethodView):
    @requires("admin")
    @blp.arguments(PasswordResetSchema)
    @blp.response(200, PasswordResetResultSchema)
    @blp.alt_response(409, schema=ErrorSchema, description="your own account; a reset pending")
    def post(self, body, user_id):
        """Give a user a temporary password to replace at the next login; sessions end"""
        return accounts.reset_password(get_db(), runtime(), caller(), user_id, body.get("reason"))


@blp.route("/users/<int:user_id>/disable")
class UserDisableViews(MethodView):
    @requires("admin")
    @blp.arguments(UserStatusChangeSchema)
    @blp.response(200, UserSchema)
    @blp.alt_response(409, schema=ErrorSchema, description="an admin's own account")
    def post(self, body, user_id):
        """Disable an account: it cannot log in and every session of it ends at once"""
        return _user_out(
            accounts.set_user_active(get_db(), caller(), user_id, False, body.get("reason"))
        )


@blp.route("/users/<int:user_id>/enable")
class UserEnableViews(MethodView):
    @requires("admin")
    @blp.arguments(UserStatusChangeSchema)
    @blp.response(200, UserSchema)
    def post(self, body, user_id):
        """Enable a disabled account again (its old sessions stay ended: it logs in anew)"""
        return _user_out(
            accounts.set_user_active(get_db(), caller(), user_id, True, body.get("reason"))
        )


@blp.route("/users/<int:user_id>/devices")
class UserDeviceViews(MethodView):
    @requires("admin", "dispatcher")
    @blp.response(200, DeviceSchema(many=True))
    def get(self, user_id):
        """A user's phones, with when each last made contact"""
        return devices.list_devices(get_db(), user_id)

    @requires("admin")
    @blp.arguments(DeviceRegisterSchema)
    @blp.response(201, DeviceSchema)
    @blp.alt_response(409, schema=ErrorSchema, description="device id already registered")
    def post(self, body, user_id):
        """Register a phone for an agent before its first login (needed with admin enrolment)"""
        return devices.register_device(get_db(), caller(), user_id, body.get("device_id"))


@blp.route("/devices")
class DeviceViews(MethodView):
    @requires("admin", "dispatcher")
    @blp.arguments(DeviceQueryArgsSchema, location="query")
    @blp.response(200, DeviceSchema(many=True))
    def get(self, args):
        """Registered devices"""
        return account_rows.list_devices(get_db(), args.get("user_id"))


@blp.route("/devices/<string:device_id>/revoke")
class DeviceRevokeViews(MethodView):
    @requires("admin")
    @blp.arguments(DeviceRevokeSchema)
    @blp.response(200, DeviceSchema)
    def post(self, body, device_id):
        """Revoke a device: its tokens fail at once and it is told to wipe"""
        return devices.revoke_device(get_db(), caller(), device_id, body.get("reason"))


@blp.route("/devices/wipe-confirmation")
class DeviceWipeViews(MethodView):
    @blp.doc(security=[dict(BEARER_AND_DEVICE)])
    @blp.response(200, DeviceSchema)
    @blp.alt_response(401, schema=ErrorSchema, description="no token, or not this device's")
    @blp.alt_response(409, schema=ErrorSchema, description="the device is not revoked")
    def post(self):
        """A revoked device confirms it wiped its data (its own token, even expired)"""
        return devices.confirm_wipe(
            get_db(),
            runtime(),
            caller(),
            request.headers.get("Authorization"),
            request.headers.get("X-Device-Id"),
        )


@blp.route("/me")
class MeViews(MethodView):
    @requires("agent", "dispatcher", "privacy_officer", "admin")
    @blp.response(200, MeSchema)
    def get(self):
        """Who the token belongs to"""
        me = principal()
        return {
            "user": _user_out(accounts.get_user(get_db(), me.user_id)),
            "device_id": me.device_id,
        }
