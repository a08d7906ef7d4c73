"""Use cases of the web console that read several things for one page."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from server.runtime import Caller, Runtime
from server.services import contact_timeline, views

CASE_PAGE_VISITS = 100  # the case page lists this many of the case's visits, oldest first


def business_today(rt: Runtime, now: Any) -> date:
    """Today in the deployment's time zone (the board's default day)."""
    return now.astimezone(ZoneInfo(rt.settings["DEFAULT_TIME_ZONE"])).date()


def case_page(db: sqlite_utils.Database, rt: Runtime, caller: Caller, case_id: int) -> dict:
    """A case with the dispatcher's card, its contact timeline and its visits."""
    case = views.case_view(db, rt, caller, case_id)
    timeline = contact_timeline.case_timeline(db, rt, caller, case_id)
    visits = views.list_visits(db, rt, caller, {"case_id": case_id}, 0, CASE_PAGE_VISITS)
    return {"case": case, "timeline": timeline, "visits": visits["items"]}
