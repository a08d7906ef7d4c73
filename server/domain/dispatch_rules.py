"""Which planned visits dispatch refuses (hard rules) and which it only warns about.

Planning reads the same compliance policy that field records are checked against, so a
visit that dispatch lets through is judged by the same hours and frequency when reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import Any

from sync.compliance import CompliancePolicy
from sync.visits import HOME_PURPOSES

_CASE_FLAGS = (
    ("do_not_visit", "do-not-visit"),
    ("hardship", "hardship"),
    ("legal_hold", "legal hold"),
)


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    field: str | None = None


@dataclass(frozen=True)
class PlanCheck:
    refusals: tuple[Finding, ...]
    warnings: tuple[Finding, ...]


def check_plan(
    policy: CompliancePolicy,
    case: Mapping[str, Any],
    plan: Mapping[str, Any],
    other_visit_dates: Iterable[str],
) -> PlanCheck:
    """Check a visit as it would be planned against the case and the case's other visits."""
    refusals: list[Finding] = []
    warnings: list[Finding] = []
    for flag, label in _CASE_FLAGS:
        if case.get(flag):
            refusals.append(Finding(f"case_{flag}", f"the case is marked {label}", "case_id"))
    if case.get("status") == "closed":
        refusals.append(Finding("case_closed", "the case is closed", "case_id"))
    start, end = plan.get("window_start"), plan.get("window_end")
    if start and end and start >= end:
        refusals.append(
            Finding("window_invalid", "window_start must be before window_end", "window_end")
        )
    lawful_from, lawful_to = policy.visit_window_start, policy.visit_window_end
    for name, value in (("window_start", start), ("window_end", end)):
        if value and not (lawful_from <= time.fromisoformat(value) <= lawful_to):
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
