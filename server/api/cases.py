"""Cases: import from the core system, read as a dispatcher or (when assigned) an agent."""

from flask.views import MethodView

from schemas.cases import (
    CaseBulkChangeSchema,
    CaseBulkResultSchema,
    CaseChangeResultSchema,
    CaseImportArgsSchema,
    CasePatchSchema,
    ImportReportSchema,
)
from schemas.common import ErrorSchema
from schemas.visits import BorrowerCardSchema, CasePageSchema, CaseQueryArgsSchema, CaseSchema
from server.api.context import Blueprint, caller, get_db, requires, runtime
from server.api.import_body import IMPORT_BODY, import_lines
from server.api.visits import expected_version
from server.domain.disclosure import DISPATCH_PLANNING, VISIT_CARDS
from server.services import case_lifecycle, imports, views

blp = Blueprint("cases", __name__, url_prefix="/api/v1", description="Cases and borrowers")
# Dispatchers read for planning; agents receive their cards and nothing besides.
_READ_PURPOSE = {"dispatcher": DISPATCH_PLANNING, "agent": VISIT_CARDS}

_IF_MATCH = {
    "parameters": [
        {
            "in": "header",
            "name": "If-Match",
            "required": False,
            "schema": {"type": "string"},
            "description": "the case version you last saw (or send `version` in the body)",
        }
    ]
}


@blp.route("/cases/import")
class CaseImportViews(MethodView):
    @requires("dispatcher", "admin")
    @blp.arguments(CaseImportArgsSchema, location="query")
    @blp.doc(requestBody=IMPORT_BODY)
    @blp.response(200, ImportReportSchema)
    @blp.alt_response(415, schema=ErrorSchema, description="neither JSON Lines nor CSV")
    def post(self, args):
        """Import cases from JSON Lines or CSV; bad rows are reported, good rows kept"""
        lines, fmt = import_lines(args)
        return imports.import_cases(get_db(), runtime(), caller(), lines, fmt, "api")


@blp.route("/cases")
class CaseViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(CaseQueryArgsSchema, location="query")
    @blp.response(200, CasePageSchema, purpose=DISPATCH_PLANNING)
    def get(self, args):
        """Cases with the dispatcher's minimized borrower view"""
        after, limit = args.pop("after"), args.pop("limit")
        return views.list_cases(get_db(), runtime(), caller(), args, after, limit)


@blp.route("/cases/bulk-change")
class CaseBulkChangeViews(MethodView):
    @requires("dispatcher", "admin")
    @blp.arguments(CaseBulkChangeSchema)
    @blp.response(200, CaseBulkResultSchema, purpose=DISPATCH_PLANNING)
    def post(self, body):
        """Change many cases in one transaction; each is changed or refused on its own"""
        return case_lifecycle.change_cases(get_db(), runtime(), caller(), body["changes"])


@blp.route("/cases/<int:case_id>")
class CaseByIdViews(MethodView):
    @requires("dispatcher", "agent")
    @blp.response(200, CaseSchema, purpose=_READ_PURPOSE)
    def get(self, case_id):
        """One case; agents only while a visit to it is assigned to them"""
        return views.case_view(get_db(), runtime(), caller(), case_id)

    @requires("dispatcher", "admin")
    @blp.doc(**_IF_MATCH)
    @blp.arguments(CasePatchSchema)
    @blp.response(200, CaseChangeResultSchema, purpose=DISPATCH_PLANNING)
    @blp.alt_response(
        409,
        schema=ErrorSchema,
        description="version_conflict, or a borrower's do-not-visit request holds the flag",
    )
    @blp.alt_response(
        428, schema=ErrorSchema, description="no version sent (If-Match or `version`)"
    )
    def patch(self, body, case_id):
        """Change a case's status or flags with a reason; ending its visits purges its cards"""
        version = expected_version(body, "case")
        body.pop("version", None)
        return case_lifecycle.change_case(get_db(), runtime(), caller(), case_id, version, body)


@blp.route("/borrowers/<int:borrower_id>")
class BorrowerByIdViews(MethodView):
    @requires("dispatcher", "agent")
    @blp.response(200, BorrowerCardSchema, purpose=_READ_PURPOSE)
    def get(self, borrower_id):
        """One borrower's card; agents only while a visit to them is assigned"""
        return views.borrower_view(get_db(), runtime(), caller(), borrower_id)
