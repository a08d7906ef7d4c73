"""What a visit is: its purposes, statuses, the notice given before it, the outcomes at the door,
and how what happens at the door (or does not) moves a visit on.

The server, the wire schemas and the phone all read these names from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

VISIT_PURPOSES: tuple[str, ...] = (
    "home_visit",
    "follow_up",
    "agreement_signing",
    "workplace_visit",
)
# Purposes that take the agent to the borrower's home: the home-visit rules apply to them
# (visits per period, distance from the home, prior notice).
HOME_PURPOSES: frozenset[str] = frozenset({"home_visit", "follow_up", "agreement_signing"})

PLANNED = "planned"
COMPLETED = "completed"
ATTEMPTED = "attempted"
MISSED = "missed"
CANCELLED = "cancelled"
# planned -> completed | attempted (a stored report) | missed (the day ended with none) |
# cancelled (the dispatcher, or a case change that ends its visits). attempted -> completed;
# missed -> completed | attempted (a report recorded offline arrives after the day closed).
VISIT_STATUSES: frozenset[str] = frozenset({PLANNED, COMPLETED, ATTEMPTED, MISSED, CANCELLED})
# Still open on its day: the dispatcher may change, reassign or cancel it (an attempted
# visit may be tried again that day, by its agent or another).
CHANGEABLE_STATUSES: frozenset[str] = frozenset({PLANNED, ATTEMPTED})
# What the dispatcher plans again for the next days.
REPLAN_STATUSES: frozenset[str] = frozenset({ATTEMPTED, MISSED})

NOTICE_KINDS: tuple[str, ...] = ("appointment", "letter", "sms", "phone_call", "email")

VISIT_OUTCOMES: tuple[str, ...] = (
    "met_borrower",
    "not_home",
    "refused",
    "moved",
    "third_party_met",
    "promise_to_pay",
    "agreement_signed",
    "address_not_found",
    "other",
)
# Outcomes in which nobody came to the door, so there was no contact to identify oneself for.
NO_CONTACT_OUTCOMES: frozenset[str] = frozenset({"not_home", "address_not_found"})

# What a stored report makes of its visit. `other` needs a person to read the notes, so the
# visit goes back to the dispatcher as attempted rather than counting as done.
COMPLETED_OUTCOMES: frozenset[str] = frozenset(
    {"met_borrower", "promise_to_pay", "agreement_signed", "refused"}
)
ATTEMPTED_OUTCOMES: frozenset[str] = frozenset(
    {"not_home", "address_not_found", "moved", "third_party_met", "other"}
)


def status_after_reports(status: str, outcomes: Iterable[str]) -> str:
    """The visit's status once reports with these outcomes are stored, in any order: one
    completed outcome completes it, any other report makes it attempted (also a visit whose
    day was closed as missed); a cancelled visit stays cancelled (its report is flagged)."""
    found = set(outcomes)
    return status_after_summary(status, bool(found), bool(found & COMPLETED_OUTCOMES))


def status_after_summary(status: str, reported: bool, completed: bool) -> str:
    """status_after_reports from what it reads of the reports: whether there is any, and
    whether any has a completed outcome (so a push need not read them all)."""
    if status == CANCELLED or not reported:
        return status
    return COMPLETED if completed else ATTEMPTED


def day_ends_at(visit_date: date, time_zone: str) -> datetime:
    """The end of the visit's day: the next midnight in the borrower's time zone."""
    return datetime.combine(visit_date + timedelta(days=1), time.min, ZoneInfo(time_zone))


def status_at_day_close(status: str, visit_date: date, time_zone: str, now: datetime) -> str:
    """A visit still planned when its day has ended in the borrower's time zone is missed."""
    if status == PLANNED and now >= day_ends_at(visit_date, time_zone):
        return MISSED
    return status
