"""Which planned visits dispatch refuses (hard rules) and which it only warns about."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import Any

HOME_PURPOSES = frozenset({"home_visit", "follow_up", "agreement_signing"})


@dataclass(frozen=True)
class PlanningRules:
    visit_start: time = time(8, 0)
    visit_end: time = time(21, 0)
    max_home_visits_per_7_days: int = 1
    notice_required: bool = True


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
    rules: PlanningRules,
    case: Mapping[str, Any],
    plan: Mapping[str, Any],
    other_visit_dates: Iterable[str],
) -> PlanCheck:
    """Check a visit as it would be planned against the case and the case's other visits."""
    refusals: list[Finding] = []
    warnings: list[Finding] = []
    for flag, label in (
        ("do_not_visit", "do-not-visit"),
        ("hardship", "hardship"),
        ("legal_hold", "legal hold"),
    ):
        if case.get(flag):
            refusals.append(Finding(f"case_{flag}", f"the case is marked {label}", "case_id"))
    if case.get("status") == "closed":
        refusals.append(Finding("case_closed", "the case is closed", "case_id"))
    start, end = plan.get("window_start"), plan.get("window_end")
    if start and end and start >= end:
        refusals.append(
            Finding("window_invalid", "window_start must be before window_end", "window_end")
        )
    for name, value in (("window_start", start), ("window_end", end)):
        if value and not (rules.visit_start <= time.fromisoformat(value) <= rules.visit_end):
            refusals.append(
                Finding(
                    "outside_visit_hours",
                    f"{name} {value} is outside the lawful visiting hours "
                    f"{rules.visit_start:%H:%M}-{rules.visit_end:%H:%M} (borrower's local time)",
                    name,
                )
            )
    if plan.get("purpose") in HOME_PURPOSES:
        day = date.fromisoformat(plan["visit_date"])
        near = [d for d in other_visit_dates if abs((date.fromisoformat(d) - day).days) < 7]
        if len(near) >= rules.max_home_visits_per_7_days:
            warnings.append(
                Finding(
                    "visit_frequency_exceeded",
                    f"the case already has {len(near)} visit(s) within 7 days of {day}",
                    "visit_date",
                )
            )
        if rules.notice_required and not plan.get("notice_kind"):
            warnings.append(
                Finding(
                    "no_prior_notice",
                    "no appointment or notice is recorded for this home visit",
                    "notice",
                )
            )
    return PlanCheck(tuple(refusals), tuple(warnings))
