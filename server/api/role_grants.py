"""Privacy-officer access: the second person's decision (docs/security.md)."""

from flask.views import MethodView

from schemas.common import ErrorSchema
from schemas.role_grants import (
    RoleGrantApprovalSchema,
    RoleGrantDecisionSchema,
    RoleGrantQueryArgsSchema,
    RoleGrantSchema,
)
from server.api.context import Blueprint, caller, get_db, requires, runtime
from server.services import role_grants

blp = Blueprint(
    "role_grants",
    __name__,
    url_prefix="/api/v1/role-grants",
    description="Privacy-officer access, granted by a second person",
)


@blp.route("")
class RoleGrantViews(MethodView):
    @requires("admin", "privacy_officer")
    @blp.arguments(RoleGrantQueryArgsSchema, location="query")
    @blp.response(200, RoleGrantSchema(many=True))
    def get(self, args):
        """Requests for privacy-officer access, oldest first"""
        return role_grants.list_grants(get_db(), args.get("status"))


@blp.route("/<int:grant_id>/approve")
class RoleGrantApproveViews(MethodView):
    @requires("privacy_officer")
    @blp.arguments(RoleGrantDecisionSchema)
    @blp.response(200, RoleGrantApprovalSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="the requester or the account itself")
    @blp.alt_response(409, schema=ErrorSchema, description="already decided")
    def post(self, body, grant_id):
        """Grant the access: the account is enabled with a one-time code, answered only here"""
        return role_grants.approve_grant(get_db(), runtime(), caller(), grant_id, body.get("note"))


@blp.route("/<int:grant_id>/reject")
class RoleGrantRejectViews(MethodView):
    @requires("admin", "privacy_officer")
    @blp.arguments(RoleGrantDecisionSchema)
    @blp.response(200, RoleGrantSchema)
    @blp.alt_response(409, schema=ErrorSchema, description="already decided")
    def post(self, body, grant_id):
        """Turn a request down (or withdraw it); the account stays disabled"""
        return role_grants.reject_grant(get_db(), caller(), grant_id, body.get("note"))
