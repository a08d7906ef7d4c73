"""Flag review: the compliance flags on stored records as review items, and an agent's
compliance summary. Dispatchers review (docs/flag-review.md says why)."""

from flask.views import MethodView

from schemas.common import ErrorSchema
from schemas.flag_reviews import (
    ComplianceSummaryArgsSchema,
    ComplianceSummarySchema,
    FlagAssignSchema,
    FlagReopenSchema,
    FlagResolveSchema,
    FlagReviewDetailSchema,
    FlagReviewPageSchema,
    FlagReviewQueryArgsSchema,
)
from server.api.context import Blueprint, caller, get_db, requires
from server.api.visits import expected_version
from server.domain.disclosure import COMPLIANCE_EVIDENCE
from server.services import flag_reviews

blp = Blueprint(
    "flag_reviews", __name__, url_prefix="/api/v1", description="Flag review and compliance"
)

_ITEM = "/flags/<string:record_id>/<string:code>"
_IF_MATCH = {
    "parameters": [
        {
            "in": "header",
            "name": "If-Match",
            "required": False,
            "schema": {"type": "string"},
            "description": "the item's version you last saw (or send `version` in the body)",
        }
    ]
}
_CONFLICT = {
    "schema": ErrorSchema,
    "description": "version_conflict, review_already_resolved or review_not_resolved",
}
_NO_VERSION = {"schema": ErrorSchema, "description": "no version sent (If-Match or `version`)"}


def _version(body: dict) -> int:
    version = expected_version(body, "flag review")
    body.pop("version", None)
    return version


@blp.route("/flags")
class FlagViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(FlagReviewQueryArgsSchema, location="query")
    @blp.response(200, FlagReviewPageSchema, purpose=COMPLIANCE_EVIDENCE)
    def get(self, args):
        """Flags on stored records as review items, filtered; each with its review state"""
        after, limit = args.pop("after"), args.pop("limit")
        return flag_reviews.list_flags(get_db(), args, after, limit)


@blp.route(_ITEM)
class FlagByIdViews(MethodView):
    @requires("dispatcher")
    @blp.response(200, FlagReviewDetailSchema, purpose=COMPLIANCE_EVIDENCE)
    def get(self, record_id, code):
        """One review item with the flag's details and its history"""
        return flag_reviews.flag_item(get_db(), record_id, code)


@blp.route(f"{_ITEM}/assign")
class FlagAssignViews(MethodView):
    @requires("dispatcher")
    @blp.doc(**_IF_MATCH)
    @blp.arguments(FlagAssignSchema)
    @blp.response(200, FlagReviewDetailSchema, purpose=COMPLIANCE_EVIDENCE)
    @blp.alt_response(409, **_CONFLICT)
    @blp.alt_response(428, **_NO_VERSION)
    def post(self, body, record_id, code):
        """Give an open or assigned item to a dispatcher to review"""
        version = _version(body)
        return flag_reviews.assign(
            get_db(), caller(), record_id, code, version, body["assignee_id"], body.get("comment")
        )


@blp.route(f"{_ITEM}/resolve")
class FlagResolveViews(MethodView):
    @requires("dispatcher")
    @blp.doc(**_IF_MATCH)
    @blp.arguments(FlagResolveSchema)
    @blp.response(200, FlagReviewDetailSchema, purpose=COMPLIANCE_EVIDENCE)
    @blp.alt_response(409, **_CONFLICT)
    @blp.alt_response(428, **_NO_VERSION)
    def post(self, body, record_id, code):
        """Resolve an item: justified, breach or data_error, with a comment"""
        version = _version(body)
        return flag_reviews.resolve(
            get_db(), caller(), record_id, code, version, body["disposition"], body["comment"]
        )


@blp.route(f"{_ITEM}/reopen")
class FlagReopenViews(MethodView):
    @requires("dispatcher")
    @blp.doc(**_IF_MATCH)
    @blp.arguments(FlagReopenSchema)
    @blp.response(200, FlagReviewDetailSchema, purpose=COMPLIANCE_EVIDENCE)
    @blp.alt_response(409, **_CONFLICT)
    @blp.alt_response(428, **_NO_VERSION)
    def post(self, body, record_id, code):
        """Reopen a resolved item, with a comment saying why"""
        version = _version(body)
        return flag_reviews.reopen(get_db(), caller(), record_id, code, version, body["comment"])


@blp.route("/agents/<int:agent_id>/compliance-summary")
class ComplianceSummaryViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(ComplianceSummaryArgsSchema, location="query")
    @blp.response(200, ComplianceSummarySchema)
    def get(self, args, agent_id):
        """An agent's visits, flags by code, breaches and open items over a period"""
        return flag_reviews.compliance_summary(
            get_db(), caller(), agent_id, args.get("start"), args.get("end")
        )
