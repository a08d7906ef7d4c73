"""The contact log: contacts on every channel, logged by staff, imported from a dialer or
an SMS gateway, synced from the agents' phones; and the case timeline built on it."""

from flask.views import MethodView

from schemas.common import ErrorSchema
from schemas.contacts import (
    ContactCreateSchema,
    ContactImportArgsSchema,
    ContactImportReportSchema,
    ContactPageSchema,
    ContactPlanResultSchema,
    ContactPlanSchema,
    ContactQueryArgsSchema,
    ContactResultSchema,
    TimelineSchema,
)
from server.api.context import Blueprint, caller, get_db, requires, runtime
from server.api.import_body import IMPORT_BODY, import_lines
from server.domain.disclosure import DISPATCH_PLANNING
from server.services import contact_compliance, contact_import, contact_timeline, contacts

blp = Blueprint(
    "contacts",
    __name__,
    url_prefix="/api/v1",
    description="Every contact with a borrower, on every channel, and the case timeline",
)


@blp.route("/cases/<int:case_id>/contacts")
class ContactViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(ContactQueryArgsSchema, location="query")
    @blp.response(200, ContactPageSchema, purpose=DISPATCH_PLANNING)
    def get(self, args, case_id):
        """The case's contact log, home-visit reports included, oldest first"""
        return contacts.list_contacts(get_db(), case_id, args.get("channel"))

    @requires("dispatcher")
    @blp.arguments(ContactCreateSchema)
    @blp.response(201, ContactResultSchema, purpose=DISPATCH_PLANNING)
    @blp.alt_response(409, schema=ErrorSchema, description="this contact is on the log already")
    def post(self, body, case_id):
        """Log a call, message or letter"""
        return contacts.log_contact(get_db(), runtime(), caller(), case_id, body)


@blp.route("/cases/<int:case_id>/timeline")
class TimelineViews(MethodView):
    @requires("dispatcher")
    @blp.response(200, TimelineSchema, purpose=DISPATCH_PLANNING)
    def get(self, case_id):
        """The collections ladder: each rung, the current one, the next lawful action"""
        return contact_timeline.case_timeline(get_db(), runtime(), caller(), case_id)


@blp.route("/contacts/import")
class ContactImportViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(ContactImportArgsSchema, location="query")
    @blp.doc(requestBody=IMPORT_BODY)
    @blp.response(200, ContactImportReportSchema)
    @blp.alt_response(415, schema=ErrorSchema, description="neither JSON Lines nor CSV")
    def post(self, args):
        """Import a dialer or SMS gateway export; a contact already on the log adds nothing"""
        lines, fmt = import_lines(args)
        return contact_import.import_contacts(get_db(), runtime(), caller(), lines, fmt, "api")


@blp.route("/cases/<int:case_id>/contacts/plan")
class ContactPlanViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(ContactPlanSchema)
    @blp.response(200, ContactPlanResultSchema)
    @blp.alt_response(422, schema=ErrorSchema, description="contact_refused: the rule named")
    def post(self, body, case_id):
        """Check a contact before making it: refused with the rule it would break"""
        return contact_compliance.plan_contact(get_db(), runtime(), caller(), case_id, body)
