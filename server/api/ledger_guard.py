"""Per-request duties of the ledger's tamper evidence: sign the head when an entry has
waited CHECKPOINT_EVERY_S for a checkpoint, and refuse to serve with a signing key the
keyring does not hold (possible only under `flask run`: other servers do not start)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app, g, jsonify

from server.api.context import runtime
from server.api.errors import error_body
from server.services import checkpoints

log = logging.getLogger(__name__)

_NEVER = datetime.max.replace(tzinfo=UTC)
_RETRY_AFTER_FAILURE = timedelta(minutes=1)


class CheckpointTimer:
    """When this process next looks at the ledger for an unsigned entry that waited long."""

    def __init__(self) -> None:
        self.next_at: datetime | None = None  # None: at the first request
        self.lock = threading.Lock()

    def due(self, now: datetime) -> bool:
        return self.next_at is None or now >= self.next_at


def install(app: Flask, key_problem: str | None) -> None:
    """Register the checkpoint clock, and the refusal when the key is not in the keyring."""
    app.extensions["doorstep_checkpoint_timer"] = CheckpointTimer()
    app.teardown_request(sign_when_due)
    if key_problem:

        @app.before_request
        def _refuse_unknown_key():
            response = jsonify(error_body("signing_key_unknown", key_problem))
            response.status_code = 503
            return response


def sign_when_due(_exc: BaseException | None = None) -> None:
    """After a request that used the store: a time comparison, and at most once per
    CHECKPOINT_EVERY_S (per process) two index lookups, or a checkpoint when one is due."""
    timer: CheckpointTimer = current_app.extensions["doorstep_checkpoint_timer"]
    db = g.get("db")
    if db is None or db.conn.in_transaction:
        return
    rt = runtime()
    now = rt.clock()
    if not timer.due(now) or not timer.lock.acquire(blocking=False):
        return
    try:
        timer.next_at = checkpoints.sign_if_stale(db, rt, now) or _NEVER
    except Exception:  # a failed checkpoint must not fail the request it follows
        log.exception("the time-based ledger checkpoint failed")
        timer.next_at = now + _RETRY_AFTER_FAILURE
    finally:
        timer.lock.release()
