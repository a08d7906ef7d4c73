"""Routes and assignments: an agent's day on the road, a day's visits over a team."""

from flask.views import MethodView

from schemas.common import ErrorSchema
from schemas.routes import (
    AssignmentAcceptSchema,
    AssignmentProposalRequestSchema,
    AssignmentProposalSchema,
    AssignmentResultSchema,
    RouteQueryArgsSchema,
    RouteSchema,
)
from server.api.context import Blueprint, caller, get_db, requires, runtime
from server.domain.disclosure import DISPATCH_PLANNING
from server.services import routes

blp = Blueprint(
    "routes", __name__, url_prefix="/api/v1", description="Lawful routes and assignments"
)

_NO_START = {
    "schema": ErrorSchema,
    "description": "no start point: no home base, depot or reported position (field start)",
}
_STALE = {"schema": ErrorSchema, "description": "a visit changed since its version, or closed"}


@blp.route("/agents/<int:agent_id>/days/<day:day>/route")
class DayRouteViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(RouteQueryArgsSchema, location="query")
    @blp.response(200, RouteSchema, purpose=DISPATCH_PLANNING)
    @blp.alt_response(422, **_NO_START)
    def get(self, args, agent_id, day):
        """Times and distances of the day's remaining visits in their current order"""
        return routes.current_route(get_db(), runtime(), caller(), agent_id, day, args)


@blp.route("/agents/<int:agent_id>/days/<day:day>/route-proposal")
class DayRouteProposalViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(RouteQueryArgsSchema, location="query")
    @blp.response(200, RouteSchema, purpose=DISPATCH_PLANNING)
    @blp.alt_response(422, **_NO_START)
    def post(self, args, agent_id, day):
        """Propose a lawful order of the remaining visits (not applied: PUT it to .../order)"""
        return routes.propose_route(get_db(), runtime(), caller(), agent_id, day, args)


@blp.route("/days/<day:day>/assignment-proposal")
class AssignmentProposalViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(AssignmentProposalRequestSchema)
    @blp.response(200, AssignmentProposalSchema, purpose=DISPATCH_PLANNING)
    def post(self, body, day):
        """Propose who takes which of the day's visits: balanced, lawful, within agents' hours"""
        return routes.propose_assignment(get_db(), runtime(), caller(), day, body)


@blp.route("/days/<day:day>/assignment")
class AssignmentViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(AssignmentAcceptSchema)
    @blp.response(200, AssignmentResultSchema, purpose=DISPATCH_PLANNING)
    @blp.alt_response(409, **_STALE)
    def post(self, body, day):
        """Accept an assignment, as proposed or edited: every visit at its version, or none"""
        return routes.accept_assignment(get_db(), runtime(), caller(), day, body["visits"])
