"""The privacy officer's reports: disclosures per borrower, history per agent or device,
anomalies, the staff log as CSV, records of processing. Ids and field names, never values."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from schemas.audit import StaffActionPageSchema, StaffActionQueryArgsSchema
from schemas.audit_reports import (
    AnomalyPageSchema,
    AnomalyQueryArgsSchema,
    DisclosureQueryArgsSchema,
    DisclosureReportSchema,
    HistoryQueryArgsSchema,
    HistorySchema,
    RecordsOfProcessingQueryArgsSchema,
    RecordsOfProcessingSchema,
)
from server.api.context import Blueprint, get_db, requires, runtime
from server.api.responses import csv_file, html_page
from server.domain.csv_cells import to_csv
from server.services import anomalies, audit_reports

blp = Blueprint(
    "audit_reports",
    __name__,
    url_prefix="/api/v1/audit",
    description="Disclosure reports, histories, anomalies, records of processing",
)


def _also_as(content_type: str) -> Any:
    """Document another representation of the same 200 response."""
    return blp.alt_response(200, schema={"type": "string"}, content_type=content_type, success=True)


def _disclosures_as(report: dict[str, Any], fmt: str) -> Any:
    if fmt == "json":
        return report
    dumped = DisclosureReportSchema().dump(report)
    if fmt == "html":
        return html_page("audit/disclosures.html", report=dumped)
    text = to_csv(audit_reports.DISCLOSURE_CSV_COLUMNS, dumped["items"])
    return csv_file(text, f"disclosures-borrower-{report['borrower_id']}.csv", dumped["next_after"])


@blp.route("/borrowers/<int:borrower_id>/disclosures")
class BorrowerDisclosureViews(MethodView):
    @requires("privacy_officer")
    @blp.arguments(DisclosureQueryArgsSchema, location="query")
    @blp.response(200, DisclosureReportSchema)
    @_also_as("text/csv")
    @_also_as("text/html")
    def get(self, args, borrower_id):
        """Accounting of disclosures: who received which fields of a borrower, when and why"""
        fmt = args.pop("format")
        report = audit_reports.borrower_disclosures(get_db(), runtime(), borrower_id, args)
        return _disclosures_as(report, fmt)


@blp.route("/agents/<int:user_id>/history")
class AgentHistoryViews(MethodView):
    @requires("privacy_officer")
    @blp.arguments(HistoryQueryArgsSchema, location="query")
    @blp.response(200, HistorySchema)
    def get(self, args, user_id):
        """Everything a user received, day by day, with the visits that justified it"""
        return audit_reports.agent_history(get_db(), runtime(), user_id, args)


@blp.route("/devices/<string:device_id>/history")
class DeviceHistoryViews(MethodView):
    @requires("privacy_officer")
    @blp.arguments(HistoryQueryArgsSchema, location="query")
    @blp.response(200, HistorySchema)
    def get(self, args, device_id):
        """Everything a device received, day by day, with the visits that justified it"""
        return audit_reports.device_history(get_db(), runtime(), device_id, args)


@blp.route("/anomalies")
class AnomalyViews(MethodView):
    @requires("privacy_officer")
    @blp.arguments(AnomalyQueryArgsSchema, location="query")
    @blp.response(200, AnomalyPageSchema)
    def get(self, args):
        """Exposures with no assignment, off hours, in unusual volume; unconfirmed purges"""
        return anomalies.anomalies_page(get_db(), runtime(), args)


@blp.route("/staff-actions.csv")
class StaffActionExportViews(MethodView):
    @requires("privacy_officer", "admin")
    @blp.arguments(StaffActionQueryArgsSchema, location="query")
    @blp.response(200, content_type="text/csv", description="RFC 4180 CSV, one row per action")
    def get(self, args):
        """The staff audit log as CSV, with the same filters and pages as its JSON form"""
        page = StaffActionPageSchema().dump(audit_reports.staff_actions(get_db(), args))
        text = to_csv(audit_reports.STAFF_CSV_COLUMNS, page["items"])
        return csv_file(text, "staff-actions.csv", page["next_after"])


@blp.route("/records-of-processing")
class RecordsOfProcessingViews(MethodView):
    @requires("privacy_officer", "admin")
    @blp.arguments(RecordsOfProcessingQueryArgsSchema, location="query")
    @blp.response(200, RecordsOfProcessingSchema)
    @_also_as("text/html")
    def get(self, args):
        """GDPR art. 30 records of processing, generated from the configuration in force"""
        record = audit_reports.records_of_processing(get_db(), runtime())
        if args["format"] == "json":
            return record
        dumped = RecordsOfProcessingSchema().dump(record)
        return html_page("audit/records_of_processing.html", record=dumped)
