"""Payments from the core system, and the worklist of broken promises and overdue instalments."""

from flask.views import MethodView

from schemas.common import ErrorSchema
from schemas.payments import (
    PaymentImportArgsSchema,
    PaymentImportReportSchema,
    PromiseWorklistArgsSchema,
    PromiseWorklistSchema,
)
from server.api.context import Blueprint, caller, get_db, requires, runtime
from server.api.import_body import IMPORT_BODY, import_lines
from server.domain.disclosure import DISPATCH_PLANNING
from server.services import payments, repayment

blp = Blueprint(
    "payments", __name__, url_prefix="/api/v1", description="Payments, promises and instalments"
)


@blp.route("/payments/import")
class PaymentImportViews(MethodView):
    # Whoever imports cases imports the payments of the same core system.
    @requires("dispatcher", "admin")
    @blp.arguments(PaymentImportArgsSchema, location="query")
    @blp.doc(requestBody=IMPORT_BODY)
    @blp.response(200, PaymentImportReportSchema)
    @blp.alt_response(415, schema=ErrorSchema, description="neither JSON Lines nor CSV")
    def post(self, args):
        """Import payments from JSON Lines or CSV; idempotent per payment id"""
        lines, fmt = import_lines(args)
        return payments.import_payments(get_db(), caller(), lines, fmt, "api")


@blp.route("/worklists/promises")
class PromiseWorklistViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(PromiseWorklistArgsSchema, location="query")
    @blp.response(200, PromiseWorklistSchema, purpose=DISPATCH_PLANNING)
    def get(self, args):
        """Broken promises and overdue instalments, by case, with the next lawful action"""
        return repayment.promise_worklist(get_db(), runtime(), caller(), args)
