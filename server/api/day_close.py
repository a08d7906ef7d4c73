"""The day close on the first request after a day ends: visits still planned become missed.

Local midnights all fall on quarter hours of UTC, so each process looks at most once per
quarter hour (a comparison in memory otherwise), and the store's marker makes the close run
once per boundary across processes. `flask close-day` does the same on demand.
"""

from __future__ import annotations

import logging
import sqlite3

from flask import current_app, g

from server.api.context import caller, get_db
from server.services import visit_outcomes

log = logging.getLogger("doorstep")


def close_ended_days() -> None:
    """Before each request: close the days that ended since the last quarter-hour boundary."""
    boundary = visit_outcomes.quarter_hour_of(g.now)
    seen = current_app.extensions.setdefault("doorstep_day_close", {})
    if seen.get("through") is not None and seen["through"] >= boundary:
        return
    try:
        visit_outcomes.close_if_due(get_db(), caller())
    except sqlite3.OperationalError as exc:  # a busy store: the next request tries again
        log.warning("day close postponed: %s", exc)
        return
    seen["through"] = boundary
