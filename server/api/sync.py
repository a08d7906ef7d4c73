"""Offline sync: push records, pull changes, acknowledge purges; records and device health."""

import functools
from collections.abc import Callable
from typing import Any

from flask.views import MethodView

from schemas.sync import (
    DeviceHealthSchema,
    PullArgsSchema,
    PullResultSchema,
    PurgeAckResultSchema,
    PurgeAckSchema,
    PushResultSchema,
    PushSchema,
    RecordPageSchema,
    RecordQueryArgsSchema,
)
from server.api.context import Blueprint, StrictParser, caller, get_db, requires, runtime
from server.api.fast_json import FastJSONBody, fast_json
from server.domain.disclosure import COMPLIANCE_EVIDENCE
from server.services import sync_pull, sync_push, sync_status

blp = Blueprint("sync", __name__, url_prefix="/api/v1", description="Offline sync")


class _Parser(FastJSONBody, StrictParser):
    """The house parser, with request bodies read by msgspec (a push's body is large)."""


blp.ARGUMENTS_PARSER = _Parser()  # before the views below are decorated


def before_write(step: Callable[..., Any]) -> Callable[[Callable], Callable]:
    """Hand the view `step(db, rt, caller, body)` instead of the parsed body, computed before
    the response's ledger (write) transaction opens: work that needs no lock runs while
    another request holds it."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            *rest, body = args
            return view(*rest, step(get_db(), runtime(), caller(), body), **kwargs)

        return wrapper

    return decorator


@blp.route("/sync/push")
class SyncPushViews(MethodView):
    @fast_json
    @requires("agent")
    @blp.arguments(PushSchema)
    @before_write(sync_push.prepare)
    @blp.response(200, PushResultSchema, purpose=COMPLIANCE_EVIDENCE, commits_first=True)
    def post(self, prepared):
        """Push a batch of offline records; one outcome per record, safe to replay"""
        return sync_push.push(get_db(), runtime(), caller(), prepared)


@blp.route("/sync/pull")
class SyncPullViews(MethodView):
    @fast_json
    @requires("agent")
    @blp.arguments(PullArgsSchema, location="query")
    @blp.response(200, PullResultSchema, purpose=COMPLIANCE_EVIDENCE)
    def get(self, args):
        """Cards to add or update, cards to purge, and outcomes of earlier records"""
        return sync_pull.pull(get_db(), runtime(), caller(), args.get("cursor"), args["limit"])


@blp.route("/sync/purge-acks")
class PurgeAckViews(MethodView):
    @requires("agent")
    @blp.arguments(PurgeAckSchema)
    @blp.response(200, PurgeAckResultSchema)
    def post(self, body):
        """Confirm that the device purged these visits' cards"""
        return sync_pull.acknowledge_purges(get_db(), caller(), body["visit_ids"])


@blp.route("/sync/health")
class SyncHealthViews(MethodView):
    @requires("dispatcher", "admin")
    @blp.response(200, DeviceHealthSchema(many=True))
    def get(self):
        """Per device: last push and pull, clock skew, queue, unconfirmed purges, rejections"""
        rt = runtime()
        return sync_status.device_health(get_db(), caller().now, rt.compliance.clock_skew_limit_s)


@blp.route("/records")
class RecordViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(RecordQueryArgsSchema, location="query")
    @blp.response(200, RecordPageSchema, purpose=COMPLIANCE_EVIDENCE)
    def get(self, args):
        """Field records as stored, with their flags (typed ID characters are never kept)"""
        after, limit = args.pop("after"), args.pop("limit")
        return sync_status.list_records(get_db(), args, after, limit)
