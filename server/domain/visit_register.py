"""The visit register: one line per visit attempt, with its time, place and method.

Supervisors keep a register of every visit made: when (the planned window and the times
the agent reported), where (the reported position and how far it was from the borrower's
home), how (the visit's purpose, whether the badge was shown before contact, whether the
ID document matched), what happened and which compliance flags it raised. A planned visit
with no report is a line of its own, `not_attempted` or `missed` (or `cancelled`), so the
register also shows the visits that did not happen.

Pure: the stored rows in, the register's lines out. The identity check appears only as its
result (match, mismatch, ...); the ID number and the typed characters are never read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sync.geo import haversine_m
from sync.identity import credential_counts, id_verification
from sync.visits import NO_CONTACT_OUTCOMES

Row = Mapping[str, Any]
ReviewKey = tuple[str, str]  # (record id, flag code)

# What a line without a report says of its visit, by the visit's status.
UNREPORTED = {"missed": "missed", "cancelled": "cancelled"}
NOT_ATTEMPTED = "not_attempted"
REPORTED = "reported"
ATTEMPTS = (REPORTED, NOT_ATTEMPTED, "missed", "cancelled")
# Visits without a planned window come after those with one, in a day's reading order.
_LATE = "99:99"


def _moment(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def contact_moment(body: Row) -> datetime | None:
    """When contact began at the door, or None if nobody was met (as the compliance rule
    reads a report: `contacted_at`, else the arrival unless the outcome says nobody)."""
    contacted = _moment(body.get("contacted_at"))
    if contacted is not None:
        return contacted
    if body.get("outcome") in NO_CONTACT_OUTCOMES:
        return None
    return _moment(body.get("arrived_at"))


def badge_before_contact(
    contact_at: datetime | None, credential_times: Iterable[datetime], grace_s: int
) -> bool | None:
    """Whether a counting badge confirmation came before (or within the grace of) contact;
    None when nobody was met, so there was no contact to precede."""
    if contact_at is None:
        return None
    limit = contact_at + timedelta(seconds=grace_s)
    return any(moment <= limit for moment in credential_times)


def local_time(text: Any, time_zone: str | None) -> str | None:
    """A stored UTC moment as "HH:MM" in the borrower's time zone, the clock the planned
    window is written in; None when either is unknown."""
    moment = _moment(text)
    if moment is None or not time_zone:
        return None
    try:
        return moment.astimezone(ZoneInfo(time_zone)).strftime("%H:%M")
    except (ZoneInfoNotFoundError, ValueError):
        return None


def distance_from_home(fix: Any, home_lat: Any, home_lon: Any) -> float | None:
    """Metres (to 0.1 m) from the reported position to the borrower's home, when both are
    known."""
    if not isinstance(fix, Mapping) or home_lat is None or home_lon is None:
        return None
    lat, lon = fix.get("lat"), fix.get("lon")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    return round(haversine_m(lat, lon, home_lat, home_lon), 1)


def review_keys(records: Iterable[Row]) -> list[ReviewKey]:
    """(record id, flag code) of every flag these records raised, in order, once each."""
    keys: dict[ReviewKey, None] = {}
    for record in records:
        for flag in record["outcome"].get("flags", []):
            keys[(record["id"], flag["code"])] = None
    return list(keys)


def _codes(record: Row) -> list[str]:
    return [flag["code"] for flag in record["outcome"].get("flags", [])]


def _identity(confirmations: list[Row]) -> str | None:
    """The result of the borrower's ID checks at this attempt: a match if any matched,
    else the latest result."""
    results = [
        id_verification(r["kind"], r["body"], r["outcome"])
        for r in sorted(confirmations, key=lambda r: r["recorded_at"])
    ]
    results = [result for result in results if result is not None]
    if "match" in results:
        return "match"
    return results[-1] if results else None


def _flags(records: Iterable[Row], reviews: Mapping[ReviewKey, Row]) -> list[dict[str, Any]]:
    flags = []
    for record in records:
        for code in _codes(record):
            review = reviews.get((record["id"], code), {})
            flags.append(
                {
                    "record_id": record["id"],
                    "code": code,
                    "review_status": review.get("status"),
                    "review_disposition": review.get("disposition"),
                }
            )
    return flags


def _nearest_report(confirmation: Row, reports: list[Row]) -> Row:
    """The attempt a confirmation belongs to: the report of the same agent nearest in time
    (any report when the agent made none)."""
    own = [r for r in reports if r["agent_id"] == confirmation["agent_id"]] or reports
    at = _moment(confirmation["recorded_at"])

    def gap(report: Row) -> float:
        arrived = _moment(report["body"].get("arrived_at"))
        if at is None or arrived is None:
            return float("inf")
        return abs((arrived - at).total_seconds())

    return min(own, key=gap)


def _base(visit: Row) -> dict[str, Any]:
    return {
        "visit_id": visit["visit_id"],
        "visit_date": visit["visit_date"],
        "agent_id": visit["agent_id"],
        "agent_name": visit["agent_name"],
        "team": visit["team"],
        "case_id": visit["case_id"],
        "case_external_id": visit["case_external_id"],
        "borrower_name": visit["borrower_name"],
        "method": visit["purpose"],
        "planned_window_start": visit["window_start"],
        "planned_window_end": visit["window_end"],
        "visit_status": visit["status"],
    }


def _attempt_line(
    visit: Row,
    report: Row,
    confirmations: list[Row],
    credential_times: list[datetime],
    reviews: Mapping[ReviewKey, Row],
    grace_s: int,
) -> dict[str, Any]:
    body = report["body"]
    fix = body.get("location") if isinstance(body.get("location"), Mapping) else None
    zone = visit["time_zone"]
    return {
        **_base(visit),
        "attempt": REPORTED,
        "record_id": report["id"],
        "arrived_at": body.get("arrived_at"),
        "contacted_at": body.get("contacted_at"),
        "departed_at": body.get("departed_at"),
        "arrived_local": local_time(body.get("arrived_at"), zone),
        "contacted_local": local_time(body.get("contacted_at"), zone),
        "departed_local": local_time(body.get("departed_at"), zone),
        "outcome": body.get("outcome"),
        "reported_lat": fix.get("lat") if fix else None,
        "reported_lon": fix.get("lon") if fix else None,
        "accuracy_m": fix.get("accuracy_m") if fix else None,
        "distance_from_home_m": distance_from_home(fix, visit["home_lat"], visit["home_lon"]),
        "badge_shown_before_contact": badge_before_contact(
            contact_moment(body), credential_times, grace_s
        ),
        "identity_result": _identity(confirmations),
        "third_party_present": bool(body.get("third_party_present", False)),
        "debt_discussed_with_third_party": bool(body.get("debt_discussed_with_third_party", False)),
        "flags": _flags([report, *confirmations], reviews),
    }


# The fields only an attempt has: null on the line of a visit nobody reported on.
ATTEMPT_FIELDS = (
    "record_id",
    "arrived_at",
    "contacted_at",
    "departed_at",
    "arrived_local",
    "contacted_local",
    "departed_local",
    "outcome",
    "reported_lat",
    "reported_lon",
    "accuracy_m",
    "distance_from_home_m",
    "badge_shown_before_contact",
    "third_party_present",
    "debt_discussed_with_third_party",
)


def _unreported_line(
    visit: Row, confirmations: list[Row], reviews: Mapping[ReviewKey, Row]
) -> dict[str, Any]:
    return {
        **_base(visit),
        **dict.fromkeys(ATTEMPT_FIELDS),
        "attempt": UNREPORTED.get(visit["status"], NOT_ATTEMPTED),
        "identity_result": _identity(confirmations),
        "flags": _flags(confirmations, reviews),
    }


def register_lines(
    visits: Iterable[Row],
    records: Iterable[Row],
    reviews: Mapping[ReviewKey, Row],
    *,
    grace_s: int,
) -> list[dict[str, Any]]:
    """The register's lines for these visits: one per stored visit report, and one for a
    visit with none. `records`: the visits' stored visit reports and ID confirmations
    (body and outcome parsed); `reviews`: the review state of each (record id, flag code)."""
    by_visit: dict[int, list[Row]] = {}
    for record in records:
        by_visit.setdefault(record["visit_id"], []).append(record)
    lines = []
    for visit in visits:
        stored = by_visit.get(visit["visit_id"], [])
        reports = [r for r in stored if r["kind"] == "visit_report"]
        confirmations = [r for r in stored if r["kind"] == "id_confirmation"]
        if not reports:
            lines.append(_unreported_line(visit, confirmations, reviews))
            continue
        attached: dict[str, list[Row]] = {r["id"]: [] for r in reports}
        for confirmation in confirmations:
            attached[_nearest_report(confirmation, reports)["id"]].append(confirmation)
        for report in reports:
            credentials = [
                moment
                for r in stored
                if r["agent_id"] == report["agent_id"]
                and credential_counts(r["kind"], r["body"], _codes(r))
                and (moment := _moment(r["recorded_at"])) is not None
            ]
            lines.append(
                _attempt_line(visit, report, attached[report["id"]], credentials, reviews, grace_s)
            )
    lines.sort(key=_reading_order)
    return lines


def _reading_order(line: Row) -> tuple:
    return (
        line["visit_date"],
        line["agent_name"] or "",
        line["planned_window_start"] or _LATE,
        line["visit_id"],
        line.get("arrived_at") or "",
    )
