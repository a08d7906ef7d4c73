"""The visit register: every visit attempt's time, place and method, for supervision and
audit, as JSON, a CSV file or a printable page."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from schemas.visit_register import RegisterPageSchema, RegisterQueryArgsSchema
from server.api.context import Blueprint, caller, get_db, requires, runtime
from server.api.ledgering import accounted
from server.api.responses import csv_file, html_page
from server.domain.csv_cells import csv_lines
from server.domain.disclosure import VISIT_REGISTER
from server.services import visit_register

blp = Blueprint(
    "visit_register",
    __name__,
    url_prefix="/api/v1",
    description="The visit register: time, place and method of every visit attempt",
)


def _also_as(content_type: str) -> Any:
    """Document another representation of the same 200 response."""
    return blp.alt_response(200, schema={"type": "string"}, content_type=content_type, success=True)


def _as(page: dict[str, Any], fmt: str) -> Any:
    """JSON is dumped and ledgered by Blueprint.response; a CSV file or a page is rendered
    from the same body, accounted for by the same ledger layer first."""
    if fmt == "json":
        return page
    dumped = accounted(RegisterPageSchema(), page)
    if fmt == "html":
        return html_page("register/visit_register.html", page=dumped)
    rows = visit_register.csv_rows(dumped["items"])
    name = "visit-register.csv"
    return csv_file(csv_lines(visit_register.CSV_COLUMNS, rows), name, dumped["next_after"])


@blp.route("/register")
class VisitRegisterViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(RegisterQueryArgsSchema, location="query")
    @blp.response(200, RegisterPageSchema, purpose=VISIT_REGISTER)
    @_also_as("text/csv")
    @_also_as("text/html")
    def get(self, args):
        """The visit register: each attempt's time, place, method, outcome and flags"""
        fmt = args.pop("format")
        page = visit_register.register_page(get_db(), runtime(), caller(), args, fmt)
        return _as(page, fmt)
