"""Liveness and readiness."""

from flask.views import MethodView
from marshmallow import fields

from schemas.common import StrictSchema
from server.api.context import Blueprint, get_db
from server.storage.connection import connection_settings

blp = Blueprint("health", __name__, url_prefix="/api/v1", description="Health")


class HealthSchema(StrictSchema):
    status = fields.Str()
    store = fields.Dict()


@blp.route("/health")
class HealthViews(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self):
        """The process is up"""
        return {"status": "ok", "store": {}}


@blp.route("/ready")
class ReadyViews(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self):
        """The store answers, with the settings every connection must have"""
        return {"status": "ready", "store": connection_settings(get_db())}
