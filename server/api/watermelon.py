"""WatermelonDB's sync protocol over the native one (docs/watermelondb.md)."""

from flask.views import MethodView

from schemas.watermelon import (
    WatermelonPullArgsSchema,
    WatermelonPullResultSchema,
    WatermelonPushResultSchema,
    WatermelonPushSchema,
)
from server.api.context import Blueprint, caller, get_db, requires, runtime
from server.domain.disclosure import COMPLIANCE_EVIDENCE
from server.services import watermelon

blp = Blueprint(
    "watermelon",
    __name__,
    url_prefix="/api/v1",
    description="Offline sync for apps built on WatermelonDB's synchronize()",
)


@blp.route("/sync/watermelon/pull")
class WatermelonPullViews(MethodView):
    @requires("agent")
    @blp.arguments(WatermelonPullArgsSchema, location="query")
    @blp.response(200, WatermelonPullResultSchema, purpose=COMPLIANCE_EVIDENCE)
    def get(self, args):
        """Visits with their cards, purges as deleted rows, and outcomes of pushed records"""
        return watermelon.pull(get_db(), runtime(), caller(), args)


@blp.route("/sync/watermelon/push")
class WatermelonPushViews(MethodView):
    @requires("agent")
    @blp.arguments(WatermelonPushSchema)
    @blp.response(200, WatermelonPushResultSchema)
    def post(self, body):
        """Store the phone's rows as field records; outcomes come with the next pull"""
        return watermelon.push(get_db(), runtime(), caller(), body)
