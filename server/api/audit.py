"""The privacy officer's audit endpoints: ids and field names, never borrower values."""

from flask.views import MethodView

from schemas.audit import (
    ChainReportSchema,
    ExposurePageSchema,
    ExposureQueryArgsSchema,
    StaffActionPageSchema,
    StaffActionQueryArgsSchema,
)
from server.api.context import Blueprint, get_db, requires, runtime
from server.services import audit

blp = Blueprint("audit", __name__, url_prefix="/api/v1/audit", description="Exposure ledger")


@blp.route("/exposures")
class ExposureViews(MethodView):
    @requires("privacy_officer")
    @blp.arguments(ExposureQueryArgsSchema, location="query")
    @blp.response(200, ExposurePageSchema)
    def get(self, args):
        """Ledger entries: who received which fields of which borrower, when and why"""
        after, limit = args.pop("after"), args.pop("limit")
        return audit.exposures(get_db(), args, after, limit)


@blp.route("/verify")
class VerifyViews(MethodView):
    @requires("privacy_officer")
    @blp.response(200, ChainReportSchema)
    def get(self):
        """Recompute the hash chain; names the first altered, inserted or removed entry"""
        return audit.verify(get_db(), runtime())


@blp.route("/staff-actions")
class StaffActionViews(MethodView):
    @requires("privacy_officer", "admin")
    @blp.arguments(StaffActionQueryArgsSchema, location="query")
    @blp.response(200, StaffActionPageSchema)
    def get(self, args):
        """The staff audit log: dispatch changes, imports, logins, revocations"""
        after, limit = args.pop("after"), args.pop("limit")
        return audit.staff_actions(get_db(), args, after, limit)
