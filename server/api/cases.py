"""Cases: import from the core system, read as a dispatcher or (when assigned) an agent."""

from flask import request
from flask.views import MethodView

from schemas.cases import CaseImportArgsSchema, ImportReportSchema
from schemas.common import ErrorSchema
from schemas.visits import BorrowerCardSchema, CasePageSchema, CaseQueryArgsSchema, CaseSchema
from server.api.context import Blueprint, caller, get_db, requires, runtime
from server.domain.disclosure import DISPATCH_PLANNING, VISIT_CARDS
from server.errors import InvalidInput, UnsupportedMediaType
from server.services import imports, views

blp = Blueprint("cases", __name__, url_prefix="/api/v1", description="Cases and borrowers")
# Dispatchers read for planning; agents receive their cards and nothing besides.
_READ_PURPOSE = {"dispatcher": DISPATCH_PLANNING, "agent": VISIT_CARDS}

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


@blp.route("/cases/import")
class CaseImportViews(MethodView):
    @requires("dispatcher", "admin")
    @blp.arguments(CaseImportArgsSchema, location="query")
    @blp.doc(requestBody=_IMPORT_BODY)
    @blp.response(200, ImportReportSchema)
    @blp.alt_response(415, schema=ErrorSchema, description="neither JSON Lines nor CSV")
    def post(self, args):
        """Import cases from JSON Lines or CSV; bad rows are reported, good rows kept"""
        fmt = args.get("format") or _FORMATS.get(request.mimetype)
        if fmt is None:
            raise UnsupportedMediaType(
                "send application/x-ndjson or text/csv (or ?format=jsonl|csv)",
                field="Content-Type",
            )
        text = request.get_data(as_text=True)
        if not text.strip():
            raise InvalidInput("the import body is empty", field="body")
        return imports.import_cases(get_db(), runtime(), caller(), text.splitlines(), fmt, "api")


@blp.route("/cases")
class CaseViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(CaseQueryArgsSchema, location="query")
    @blp.response(200, CasePageSchema, purpose=DISPATCH_PLANNING)
    def get(self, args):
        """Cases with the dispatcher's minimized borrower view"""
        after, limit = args.pop("after"), args.pop("limit")
        return views.list_cases(get_db(), runtime(), caller(), args, after, limit)


@blp.route("/cases/<int:case_id>")
class CaseByIdViews(MethodView):
    @requires("dispatcher", "agent")
    @blp.response(200, CaseSchema, purpose=_READ_PURPOSE)
    def get(self, case_id):
        """One case; agents only while a visit to it is assigned to them"""
        return views.case_view(get_db(), runtime(), caller(), case_id)


@blp.route("/borrowers/<int:borrower_id>")
class BorrowerByIdViews(MethodView):
    @requires("dispatcher", "agent")
    @blp.response(200, BorrowerCardSchema, purpose=_READ_PURPOSE)
    def get(self, borrower_id):
        """One borrower's card; agents only while a visit to them is assigned"""
        return views.borrower_view(get_db(), runtime(), caller(), borrower_id)
