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
    """Every number the anomaly scan reads; each overridable by an `ANOMALY_<NAME>` setting."""

    work_start: time = time(7, 0)  # local time of the recipient
    work_end: time = time(22, 0)
    volume_factor: float = 2.0  # borrowers in a day above factor x median of the baseline ...
    volume_floor: int = 30  # ... and above this floor
    volume_baseline_days: int = 14  # the agent's previous active days forming the baseline
    # How far back those active days are looked for: three working weeks hold 14 of them,
    # and each extra day costs the scan a day of ledger reads per busy agent.
    volume_lookback_days: int = 21
    purge_ack_hours: float = 24.0  # a purge order unconfirmed for longer is an anomaly
    cards_per_report_ratio: float = 3.0  # borrowers received per visit reported on
    cards_min_borrowers: int = 10  # below this, too few cards to judge the ratio
    max_seqs: int = 100  # ledger seqs listed per anomaly; the count is always complete

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> AnomalyThresholds:
        """Defaults, overridden by ANOMALY_WORK_START="06:30", ANOMALY_VOLUME_FLOOR=50, ..."""
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = settings.get(f"ANOMALY_{spec.name.upper()}")
            if raw is None or raw == "":
                continue
            default = spec.default
            if isinstance(default, time):
                values[spec.name] = raw if isinstance(raw, time) else time.fromisoformat(raw)
            elif isinstance(default, float):
                values[spec.name] = float(raw)
            else:
                values[spec.name] = int(raw)
        return cls(**values)


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
