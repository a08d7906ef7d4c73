"""Dispatch: visits and an agent's day order; and the agent's own day."""

from flask import request
from flask.views import MethodView

from schemas.common import ErrorSchema
from schemas.visits import (
    AgentVisitSchema,
    BulkResultSchema,
    DayOrderResultSchema,
    DayOrderSchema,
    DayQueryArgsSchema,
    DaySchema,
    DispatchVisitPageSchema,
    DispatchVisitSchema,
    PlainVisitSchema,
    ReplanQueryArgsSchema,
    VisitBulkCreateSchema,
    VisitCancelSchema,
    VisitCreateSchema,
    VisitPatchSchema,
    VisitQueryArgsSchema,
    VisitWriteResultSchema,
)
from server.api.context import Blueprint, caller, get_db, requires, runtime
from server.api.responses import response_by_role
from server.domain.disclosure import DISPATCH_PLANNING, VISIT_CARDS
from server.errors import InvalidInput, PreconditionRequired
from server.services import dispatch, views

blp = Blueprint("visits", __name__, url_prefix="/api/v1", description="Visits, days and routes")
# Dispatchers read for planning; agents receive their cards and nothing besides.
_READ_PURPOSE = {"dispatcher": DISPATCH_PLANNING, "agent": VISIT_CARDS}

_STALE = {"schema": ErrorSchema, "description": "version_conflict, or the visit is closed"}
_NO_VERSION = {"schema": ErrorSchema, "description": "no version sent (If-Match or `version`)"}
_IF_MATCH = {
    "parameters": [
        {
            "in": "header",
            "name": "If-Match",
            "required": False,
            "schema": {"type": "string"},
            "description": "the visit version you last saw (or send `version` in the body)",
        }
    ]
}


def expected_version(body: dict, what: str = "visit") -> int:
    """The caller's last-seen version, from If-Match or the body; required."""
    header = request.headers.get("If-Match", "").strip().strip('"').removeprefix("W/").strip('"')
    if header:
        if not header.isdigit():
            raise InvalidInput(f"If-Match must be a {what} version number", field="If-Match")
        if "version" in body and body["version"] != int(header):
            raise InvalidInput("If-Match and version disagree", field="version")
        return int(header)
    if "version" in body:
        return body["version"]
    raise PreconditionRequired(
        "send the version you last saw (If-Match or version)", field="version"
    )


@blp.route("/visits")
class VisitViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(VisitQueryArgsSchema, location="query")
    @blp.response(200, DispatchVisitPageSchema, purpose=DISPATCH_PLANNING)
    def get(self, args):
        """Visits, filtered; each with the dispatcher's borrower view"""
        after, limit = args.pop("after"), args.pop("limit")
        if "visit_date" in args:
            args["visit_date"] = args["visit_date"].isoformat()
        return views.list_visits(get_db(), runtime(), caller(), args, after, limit)

    @requires("dispatcher")
    @blp.arguments(VisitCreateSchema)
    @blp.response(201, VisitWriteResultSchema, purpose=DISPATCH_PLANNING)
    def post(self, body):
        """Plan a visit; refused for do-not-visit, hardship or legal-hold cases"""
        return dispatch.create_visit(get_db(), runtime(), caller(), body)


@blp.route("/visits/bulk")
class VisitBulkViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(VisitBulkCreateSchema)
    @blp.response(200, BulkResultSchema, purpose=DISPATCH_PLANNING)
    def post(self, body):
        """Plan many visits; each is created or refused on its own"""
        return dispatch.create_visits(get_db(), runtime(), caller(), body["visits"])


@blp.route("/visits/replan")
class VisitReplanViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(ReplanQueryArgsSchema, location="query")
    @blp.response(200, DispatchVisitPageSchema, purpose=DISPATCH_PLANNING)
    def get(self, args):
        """Attempted and missed visits to plan again, the latest of each case still visitable"""
        after, limit = args.pop("after"), args.pop("limit")
        return views.replan_list(get_db(), runtime(), caller(), args, after, limit)


@blp.route("/visits/<int:visit_id>")
class VisitByIdViews(MethodView):
    @requires("dispatcher", "agent")
    @response_by_role(
        200,
        {"agent": AgentVisitSchema, "dispatcher": DispatchVisitSchema},
        "The visit: agents see the agent's shape (no planning notes), dispatchers theirs",
        purpose=_READ_PURPOSE,
    )
    def get(self, visit_id):
        """One visit; agents only their own, only while the card may be held"""
        return views.visit(get_db(), runtime(), caller(), visit_id)

    @requires("dispatcher")
    @blp.doc(**_IF_MATCH)
    @blp.arguments(VisitPatchSchema)
    @blp.response(200, VisitWriteResultSchema, purpose=DISPATCH_PLANNING)
    @blp.alt_response(409, **_STALE)
    @blp.alt_response(428, **_NO_VERSION)
    def patch(self, body, visit_id):
        """Change, reschedule or reassign a visit (optimistic concurrency on version)"""
        version = expected_version(body)
        body.pop("version", None)
        return dispatch.update_visit(get_db(), runtime(), caller(), visit_id, version, body)


@blp.route("/visits/<int:visit_id>/cancel")
class VisitCancelViews(MethodView):
    @requires("dispatcher")
    @blp.doc(**_IF_MATCH)
    @blp.arguments(VisitCancelSchema)
    @blp.response(200, PlainVisitSchema, purpose=DISPATCH_PLANNING)
    @blp.alt_response(409, **_STALE)
    @blp.alt_response(428, **_NO_VERSION)
    def post(self, body, visit_id):
        """Cancel a visit; the agent's devices are told to purge the card"""
        return dispatch.cancel_visit(
            get_db(), caller(), visit_id, expected_version(body), body.get("reason")
        )


@blp.route("/agents/<int:agent_id>/days/<day:day>/order")
class DayOrderViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(DayOrderSchema)
    @blp.response(200, DayOrderResultSchema, purpose=DISPATCH_PLANNING)
    @blp.alt_response(409, schema=ErrorSchema, description="a visit changed since its version")
    def put(self, body, agent_id, day):
        """Set the order of an agent's planned visits for a day"""
        visits = dispatch.set_day_order(get_db(), caller(), agent_id, day, body["visits"])
        return {"visits": visits}


@blp.route("/me/day")
class MyDayViews(MethodView):
    @requires("agent")
    @blp.arguments(DayQueryArgsSchema, location="query")
    @blp.response(200, DaySchema, purpose=VISIT_CARDS)
    def get(self, args):
        """The agent's visits for a day in route order, each with its minimized card"""
        return views.agent_day(get_db(), runtime(), caller(), args.get("date"))
