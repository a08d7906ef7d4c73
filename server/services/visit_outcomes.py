"""What happened at the door, or did not: stored reports and the end of a visit's day move
visits on (the rules are sync.visits.status_after_reports and status_at_day_close)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlite_utils

from server.clock import parse_iso, to_iso
from server.runtime import Caller
from server.services.staff_log import log_action
from server.storage import sync as sync_rows
from server.storage import visits as visit_rows
from server.storage.connection import transaction
from sync.visits import (
    COMPLETED_OUTCOMES,
    MISSED,
    PLANNED,
    status_after_summary,
    status_at_day_close,
)

# Every local midnight falls on a quarter hour of UTC (offsets are whole quarter hours), so
# a close that runs once per quarter-hour boundary misses no day's end.
QUARTER_HOUR = timedelta(minutes=15)
# The columns a stored report moves.
_REPORT_COLUMNS = ("status", "last_outcome", "attempts", "last_attempt_at")


def apply_reports(db: sqlite_utils.Database, caller: Caller, visit_ids: list[int]) -> None:
    """Bring each visit in line with its stored reports: status, the last outcome (the
    latest at the door, whatever order they synced in) and the number of attempts. The
    caller holds the push's transaction.

    Reads are bounded by the batch, not by the visits' histories: per visit the count and
    whether any report completed it come from indexes, and only the reports that arrived
    near the latest arrival text are read to find the last one (REPORT_TEXT_MARGIN)."""
    now = to_iso(caller.now)
    by = caller.principal.user_id if caller.principal else None
    ids = sorted(set(visit_ids))
    summaries = sync_rows.visit_report_summaries(db, ids, sorted(COMPLETED_OUTCOMES))
    near = sync_rows.latest_reports(
        db, {visit_id: near_text(s["latest"]) for visit_id, s in summaries.items()}
    )
    visits = visit_rows.visits_by_ids(db, ids)
    updates = []
    for visit_id, summary in summaries.items():
        visit, rows = visits.get(visit_id), near[visit_id]
        if visit is None or not rows:
            continue
        last = max(rows, key=lambda r: (parse_iso(r["arrived_at"]), r["seq"]))
        changes = {
            "status": status_after_summary(visit["status"], True, summary["completed"]),
            "last_outcome": last["outcome"],
            "attempts": summary["reports"],
            "last_attempt_at": last["arrived_at"],
        }
        if all(visit[column] == value for column, value in changes.items()):
            continue  # a replay, or a report that changes nothing
        updates.append(
            (visit_id, visit["version"], {**changes, "updated_at": now, "updated_by": by})
        )
    visit_rows.update_visits(db, [*_REPORT_COLUMNS, "updated_at", "updated_by"], updates)
    visit_rows.record_history_of(db, [visit_id for visit_id, _, _ in updates], now, by)


# An ISO 8601 text read as if it were UTC is off from its moment by its offset, always
# under a day, so the latest moment's text is within two days of the greatest text; three
# keep the comparison on the safe side.
REPORT_TEXT_MARGIN = timedelta(days=3)
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def near_text(latest: str) -> str:
    """The lowest `arrived_at` text a report can have and still be the latest at the door,
    given the greatest stored text `latest`: its moment is at most a day's offset from its
    text, and so is the latest text's ("" when that cannot be told: read them all)."""
    stamp = _STAMP.match(latest or "")
    if stamp is None:
        return ""
    try:
        bound = datetime.fromisoformat(stamp[0]) - REPORT_TEXT_MARGIN
    except (ValueError, OverflowError):
        return ""
    return bound.isoformat(timespec="seconds")


def quarter_hour_of(moment: datetime) -> datetime:
    """The quarter-hour boundary (UTC) at or before `moment`."""
    utc = moment.astimezone(UTC).replace(second=0, microsecond=0)
    return utc - timedelta(minutes=utc.minute % 15)


def close_days(
    db: sqlite_utils.Database, caller: Caller, day: date | None = None
) -> dict[str, Any]:
    """Mark missed every visit still planned whose day has ended in its borrower's time zone
    (with `day`, only that day's); running it again changes nothing."""
    with transaction(db):
        missed = _close(db, caller, day)
    return {"day": day, "missed": len(missed), "visit_ids": missed}


def close_if_due(db: sqlite_utils.Database, caller: Caller) -> int | None:
    """The day close run by requests: once per quarter-hour boundary, by whichever process
    gets there first; None when it had already run for this boundary."""
    boundary = to_iso(quarter_hour_of(caller.now))
    with transaction(db):
        marker = visit_rows.day_close_marker(db)
        if marker is not None and marker >= boundary:
            return None
        missed = _close(db, caller, None)
        visit_rows.set_day_close_marker(db, boundary)
    return len(missed)


def _close(db: sqlite_utils.Database, caller: Caller, day: date | None) -> list[int]:
    # No day after today in UTC has ended anywhere yet (UTC+14 ends a day at 10:00 UTC).
    last_day = caller.now.astimezone(UTC).date()
    if day is not None:
        last_day = min(last_day, day)
    due = [
        row["id"]
        for row in visit_rows.day_close_candidates(db, last_day.isoformat())
        if (day is None or row["visit_date"] == day.isoformat())
        and status_at_day_close(
            PLANNED, date.fromisoformat(row["visit_date"]), row["time_zone"], caller.now
        )
        == MISSED
    ]
    if not due:
        return []
    now = to_iso(caller.now)
    by = caller.principal.user_id if caller.principal else None
    missed = visit_rows.set_status_where(
        db, due, PLANNED, {"status": MISSED, "updated_at": now, "updated_by": by}
    )
    visit_rows.record_history_of(db, missed, now, by)
    log_action(
        db,
        caller,
        "days_closed",
        "visit_days",
        day.isoformat() if day else None,
        {"missed": len(missed), "visit_ids": missed},
        username="day-close",
    )
    return missed
