"""Anomaly thresholds and the pure rules that apply them: values in, values out, no I/O."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# What the anomaly scan looks for, in the order reports list them.
ANOMALY_KINDS = (
    "no_assignment",
    "outside_working_hours",
    "unusual_volume",
    "purge_unacknowledged",
    "cards_without_reports",
)


@dataclass(frozen=True)
class AnomalyThresholds:
    """Every number the anomaly scan reads: setting `ANOMALY_<NAME>` for each field `<name>`.

    What each means and its default are in server/config.py's DEFAULTS.
    """

    work_start: time  # local time of the recipient
    work_end: time
    volume_factor: float
    volume_floor: int
    volume_baseline_days: int
    volume_lookback_days: int
    purge_ack_hours: float
    cards_per_report_ratio: float
    cards_min_borrowers: int
    max_seqs: int

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> AnomalyThresholds:
        """The thresholds in force, from the ANOMALY_* settings."""
        return cls(**{spec.name: settings[setting_name(spec.name)] for spec in fields(cls)})


def setting_name(threshold: str) -> str:
    """The setting that holds a threshold: volume_floor -> ANOMALY_VOLUME_FLOOR."""
    return f"ANOMALY_{threshold.upper()}"


def assignment_problem(
    visit_id: int | None,
    version_found: object,
    status: str | None,
    assigned_agent_id: int | None,
) -> str:
    """Why an agent's entry had no assignment in force (the version at that moment)."""
    if visit_id is None:
        return "no_visit"
    if version_found is None:
        return "visit_not_planned_yet"
    if status == "cancelled":
        return "visit_cancelled"
    return "assigned_elsewhere" if assigned_agent_id is not None else "unassigned"


def off_hours_windows(
    since: datetime, until: datetime, zone: ZoneInfo, start: time, end: time
) -> list[tuple[datetime, datetime]]:
    """The stretches of [since, until) outside [start, end) local time, as aware datetimes."""
    windows = []
    day = since.astimezone(zone).date() - timedelta(days=1)
    last = until.astimezone(zone).date()
    while day <= last:
        off_from = datetime.combine(day, end, zone)
        off_to = datetime.combine(day + timedelta(days=1), start, zone)
        low, high = max(off_from, since), min(off_to, until)
        if low < high:
            windows.append((low, high))
        day += timedelta(days=1)
    return windows


def volume_threshold(baseline: Sequence[int], factor: float, floor: int) -> float:
    """More distinct borrowers than this in a day is unusual for this agent."""
    median = statistics.median(baseline) if baseline else 0
    return max(factor * median, floor)


def unusual_days(
    daily: Mapping[date, int], scanned: set[date], thresholds: AnomalyThresholds
) -> list[tuple[date, int, float, float]]:
    """(day, borrowers, baseline median, threshold) for each scanned day above threshold.

    The baseline of a day is the agent's previous `volume_baseline_days` active days."""
    found = []
    days = sorted(daily)
    for index, day in enumerate(days):
        if day not in scanned:
            continue
        baseline = [daily[d] for d in days[max(0, index - thresholds.volume_baseline_days) : index]]
        limit = volume_threshold(baseline, thresholds.volume_factor, thresholds.volume_floor)
        if daily[day] > limit:
            median = float(statistics.median(baseline)) if baseline else 0.0
            found.append((day, daily[day], median, limit))
    return found


def too_few_reports(borrowers: int, reported_visits: int, thresholds: AnomalyThresholds) -> bool:
    """Cards for many more borrowers than visits reported on."""
    return (
        borrowers >= thresholds.cards_min_borrowers
        and borrowers > thresholds.cards_per_report_ratio * reported_visits
    )
