"""Payments from the core system, and the worklist of broken promises and overdue instalments."""

from flask import request
from flask.views import MethodView

from schemas.common import ErrorSchema
from schemas.payments import (
    PaymentImportArgsSchema,
    PaymentImportReportSchema,
    PromiseWorklistArgsSchema,
    PromiseWorklistSchema,
)
from server.api.context import Blueprint, caller, get_db, requires, runtime
from server.domain.disclosure import DISPATCH_PLANNING
from server.errors import InvalidInput, UnsupportedMediaType
from server.services import payments, repayment

blp = Blueprint(
    "payments", __name__, url_prefix="/api/v1", description="Payments, promises and instalments"
)

_FORMATS = {
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/json-lines": "jsonl",
    "text/csv": "csv",
}
_IMPORT_BODY = {
    "required": True,
    "content": {
        "application/x-ndjson": {"schema": {"type": "string"}},
        "text/csv": {"schema": {"type": "string"}},
    },
}


@blp.route("/payments/import")
class PaymentImportViews(MethodView):
    # Whoever imports cases imports the payments of the same core system.
    @requires("dispatcher", "admin")
    @blp.arguments(PaymentImportArgsSchema, location="query")
    @blp.doc(requestBody=_IMPORT_BODY)
    @blp.response(200, PaymentImportReportSchema)
    @blp.alt_response(415, schema=ErrorSchema, description="neither JSON Lines nor CSV")
    def post(self, args):
        """Import payments from JSON Lines or CSV; idempotent per payment id"""
        fmt = args.get("format") or _FORMATS.get(request.mimetype)
        if fmt is None:
            raise UnsupportedMediaType(
                "send application/x-ndjson or text/csv (or ?format=jsonl|csv)",
                field="Content-Type",
            )
        text = request.get_data(as_text=True)
        if not text.strip():
            raise InvalidInput("the import body is empty", field="body")
        return payments.import_payments(get_db(), caller(), text.splitlines(), fmt, "api")


@blp.route("/worklists/promises")
class PromiseWorklistViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(PromiseWorklistArgsSchema, location="query")
    @blp.response(200, PromiseWorklistSchema, purpose=DISPATCH_PLANNING)
    def get(self, args):
        """Broken promises and overdue instalments, by case, with the next lawful action"""
        return repayment.promise_worklist(get_db(), runtime(), caller(), args)
