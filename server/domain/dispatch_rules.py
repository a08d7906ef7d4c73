"""Which planned visits dispatch refuses (hard rules) and which it only warns about.

Planning reads the same compliance policy that field records are checked against, so a
visit that dispatch lets through is judged by the same hours and frequency when reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sync.cards import case_stops_visits
from sync.cases import CLOSED_STATUSES, DO_NOT_VISIT, HARDSHIP, flags_set
from sync.compliance import CompliancePolicy, OutOfHoursConsent
from sync.visits import HOME_PURPOSES

# How each reason a case takes no visits is named in a refusal: the rule, then its words.
_CASE_RULES = {
    "do_not_visit": "marked do-not-visit",
    "hardship": "marked hardship",
    "legal_hold": "under legal hold",
    "deceased": "marked deceased",
    "dispute": "disputed (collection waits for verification)",
}


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    field: str | None = None


@dataclass(frozen=True)
class PlanCheck:
    refusals: tuple[Finding, ...]
    warnings: tuple[Finding, ...]


def case_refusals(
    policy: CompliancePolicy, case: Mapping[str, Any], do_not_visit_request: int | None = None
) -> tuple[Finding, ...]:
    """Why the case itself refuses any new visit, each rule named: closed, do-not-visit,
    deceased, legal hold, dispute (when the policy says so) — the reasons its cards leave
    the phones (sync.cards.case_stops_visits) — and hardship, which refuses new visits but
    lets those already planned go ahead. A borrower's standing do-not-visit request counts
    as the flag on every case of theirs, a case imported since included."""
    flags = flags_set(case)
    if do_not_visit_request is not None and DO_NOT_VISIT not in flags:
        found = [
            Finding(
                stop_rule(DO_NOT_VISIT),
                f"the borrower asked not to be visited (request {do_not_visit_request})",
                "case_id",
            )
        ]
        return (*found, *case_refusals(policy, case))
    reasons = case_stops_visits(
        case.get("status", ""), flags, dispute_stops_visits=policy.dispute_stops_visits
    )
    found = []
    for reason in (*reasons, *([HARDSHIP] if HARDSHIP in flags else [])):
        words = f"closed ({reason})" if reason in CLOSED_STATUSES else _CASE_RULES[reason]
        found.append(Finding(stop_rule(reason), f"the case is {words}", "case_id"))
    return tuple(found)


def stop_rule(reason: str) -> str:
    """The rule a reason for refusing a case's visits is named by: case_closed for every
    closed status, case_<flag> for a flag."""
    return "case_closed" if reason in CLOSED_STATUSES else f"case_{reason}"


def check_plan(
    policy: CompliancePolicy,
    case: Mapping[str, Any],
    plan: Mapping[str, Any],
    other_visit_dates: Iterable[str],
    consents: Iterable[OutOfHoursConsent] = (),
    time_zone: str | None = None,
    do_not_visit_request: int | None = None,
) -> PlanCheck:
    """Check a visit as it would be planned against the case and the case's other visits.
    A window outside the lawful hours is refused unless one of the borrower's `consents`
    covers it on the visit's day in its `time_zone`."""
    refusals: list[Finding] = list(case_refusals(policy, case, do_not_visit_request))
    warnings: list[Finding] = []
    start, end = plan.get("window_start"), plan.get("window_end")
    if start and end and start >= end:
        refusals.append(
            Finding("window_invalid", "window_start must be before window_end", "window_end")
        )
    lawful_from, lawful_to = policy.visit_window_start, policy.visit_window_end
    consents = tuple(consents)
    for name, value in (("window_start", start), ("window_end", end)):
        if value and not (lawful_from <= time.fromisoformat(value) <= lawful_to):
            if window_consented(policy, plan, value, consents, time_zone):
                warnings.append(
                    Finding(
                        "out_of_hours_consent",
                        f"{name} {value} is outside the lawful visiting hours; the borrower's "
                        "recorded consent covers it",
                        name,
                    )
                )
                continue
            refusals.append(
                Finding(
                    "outside_visit_hours",
                    f"{name} {value} is outside the lawful visiting hours "
                    f"{lawful_from:%H:%M}-{lawful_to:%H:%M} (borrower's local time)",
                    name,
                )
            )
    if plan.get("purpose") in HOME_PURPOSES:
        warnings += _home_visit_warnings(policy, plan, other_visit_dates)
    return PlanCheck(tuple(refusals), tuple(warnings))


def _home_visit_warnings(
    policy: CompliancePolicy, plan: Mapping[str, Any], other_visit_dates: Iterable[str]
) -> list[Finding]:
    found = []
    day = date.fromisoformat(plan["visit_date"])
    period = policy.home_visit_period_days
    near = [d for d in other_visit_dates if abs((date.fromisoformat(d) - day).days) < period]
    if len(near) >= policy.max_home_visits_per_case:
        found.append(
            Finding(
                "visit_frequency_exceeded",
                f"the case already has {len(near)} visit(s) within {period} days of {day}",
                "visit_date",
            )
        )
    if policy.prior_notice_required and not plan.get("notice_kind"):
        found.append(
            Finding(
                "no_prior_notice",
                "no appointment or notice is recorded for this home visit",
                "notice",
            )
        )
    return found


def window_consented(
    policy: CompliancePolicy,
    plan: Mapping[str, Any],
    hour: str,
    consents: Iterable[OutOfHoursConsent],
    time_zone: str | None,
) -> bool:
    """True if a consent in force for the whole planned window, on the visit's day, holds
    this out-of-hours time of it."""
    if not policy.consent_overrides_window or time_zone is None or not plan.get("visit_date"):
        return False
    zone = ZoneInfo(time_zone)
    day = date.fromisoformat(str(plan["visit_date"]))
    first = plan.get("window_start") or hour
    last = plan.get("window_end") or hour
    span = (
        datetime.combine(day, time.fromisoformat(first), zone),
        datetime.combine(day, time.fromisoformat(last), zone),
    )
    return any(c.covers(*span, [time.fromisoformat(hour)]) for c in consents)


def needs_consent(policy: CompliancePolicy, plan: Mapping[str, Any]) -> list[str]:
    """The times of a planned window that lie outside the lawful hours."""
    return [
        value
        for value in (plan.get("window_start"), plan.get("window_end"))
        if value
        and not policy.visit_window_start <= time.fromisoformat(value) <= policy.visit_window_end
    ]
