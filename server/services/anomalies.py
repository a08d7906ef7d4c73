"""The anomaly scan: who received borrower data they should not have, or oddly much of it.

Each anomaly names the ledger entries (seqs) behind it. The SQL does the per-entry work on
indexed ranges of the ledger; Python only groups the (few) rows that are anomalous.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from server.clock import parse_iso, to_iso
from server.domain.anomaly_rules import (
    ANOMALY_KINDS,
    AnomalyThresholds,
    assignment_problem,
    off_hours_windows,
    too_few_reports,
    unusual_days,
)
from server.errors import InvalidInput
from server.runtime import Runtime
from server.services.audit_reports import period
from server.storage import audit_queries

Anomaly = dict[str, Any]


def scan_anomalies(
    db: sqlite_utils.Database,
    rt: Runtime,
    since: datetime,
    until: datetime,
    kinds: Iterable[str] | None = None,
) -> list[Anomaly]:
    """Every anomaly of the given kinds (all when None) in [since, until)."""
    thresholds = AnomalyThresholds.from_settings(rt.settings)
    wanted = set(kinds or ANOMALY_KINDS)
    scan = _Scan(db, rt, since, until, thresholds)
    found: list[Anomaly] = []
    for kind in ANOMALY_KINDS:
        if kind in wanted:
            found.extend(getattr(scan, kind)())
    return found


def anomalies_page(db: sqlite_utils.Database, rt: Runtime, args: dict[str, Any]) -> dict[str, Any]:
    """The scan for the API: a bounded period, a page of the anomalies found."""
    since, until = period(rt, args.get("since"), args.get("until"), 1)
    max_days = rt.settings["ANOMALY_MAX_SCAN_DAYS"]
    if until - since > timedelta(days=max_days):
        raise InvalidInput(f"scan at most {max_days} days at a time", field="since")
    kinds = args.get("kind") or list(ANOMALY_KINDS)
    found = scan_anomalies(db, rt, since, until, kinds)
    after, limit = args["after"], args["limit"]
    page = found[after : after + limit]
    return {
        "since": since,
        "until": until,
        "kinds": kinds,
        "total": len(found),
        "items": page,
        "next_after": after + limit if after + limit < len(found) else None,
    }


def _anomaly(kind: str, rows: list[dict[str, Any]], max_seqs: int, **extra: Any) -> Anomaly:
    """An anomaly over ledger rows (in seq order): their seqs, count and time span."""
    return {
        "kind": kind,
        "user_id": None,
        "device_id": None,
        "borrower_id": None,
        "visit_id": None,
        "day": None,
        "first_at": rows[0]["occurred_at"] if rows else None,
        "last_at": rows[-1]["occurred_at"] if rows else None,
        "seqs": [r["seq"] for r in rows[:max_seqs]],
        "seq_count": len(rows),
        "detail": {},
        **extra,
    }


def _shift(zone: ZoneInfo, at: datetime) -> str:
    """The zone's UTC offset at `at` as an SQLite date modifier."""
    offset = at.astimezone(zone).utcoffset() or timedelta(0)
    return f"{int(offset.total_seconds() // 60):+d} minutes"


class _Scan:
    """One scan's inputs; a method per anomaly kind."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        rt: Runtime,
        since: datetime,
        until: datetime,
        thresholds: AnomalyThresholds,
    ) -> None:
        self.db, self.rt, self.t = db, rt, thresholds
        self.since, self.until = since, until
        self.lo, self.hi = to_iso(since), to_iso(until)
        self._recipients: list[dict[str, Any]] | None = None

    def zone(self, name: str | None) -> ZoneInfo:
        return ZoneInfo(name or self.rt.settings["DEFAULT_TIME_ZONE"])

    @property
    def recipients(self) -> list[dict[str, Any]]:
        if self._recipients is None:
            self._recipients = audit_queries.active_recipients(self.db, self.lo, self.hi)
        return self._recipients

    def daily_counts(
        self, shifts: dict[int, str], since: datetime, until: datetime
    ) -> dict[int, dict[date, int]]:
        """Distinct borrowers per agent per local day in [since, until)."""
        daily: dict[int, dict[date, int]] = {}
        for row in audit_queries.daily_borrower_counts(
            self.db, list(shifts.items()), to_iso(since), to_iso(until)
        ):
            daily.setdefault(row["user_id"], {})[date.fromisoformat(row["day"])] = row["borrowers"]
        return daily

    def no_assignment(self) -> list[Anomaly]:
        """Agent entries with no assignment to that agent in force at that moment."""
        groups: dict[tuple, list[dict[str, Any]]] = {}
        for row in audit_queries.unassigned_agent_entries(self.db, self.lo, self.hi):
            reason = assignment_problem(
                row["visit_id"], row["history_id"], row["visit_status"], row["assigned_agent_id"]
            )
            key = (row["user_id"], row["visit_id"], row["borrower_id"], reason)
            groups.setdefault(key, []).append(row)
        return [
            _anomaly(
                "no_assignment",
                rows,
                self.t.max_seqs,
                user_id=user_id,
                device_id=rows[0]["device_id"],
                borrower_id=borrower_id,
                visit_id=visit_id,
                detail={"reason": reason, "assigned_agent_id": rows[-1]["assigned_agent_id"]},
            )
            for (user_id, visit_id, borrower_id, reason), rows in groups.items()
        ]

    def outside_working_hours(self) -> list[Anomaly]:
        """Entries served outside working hours, in the recipient's time zone; per user/day."""
        zones = {r["user_id"]: self.zone(r["time_zone"]) for r in self.recipients}
        windows = [
            (user_id, to_iso(lo), to_iso(hi))
            for user_id, zone in zones.items()
            for lo, hi in off_hours_windows(
                self.since, self.until, zone, self.t.work_start, self.t.work_end
            )
        ]
        groups: dict[tuple[int, date], list[dict[str, Any]]] = {}
        for row in audit_queries.entries_in_windows(self.db, windows) if windows else []:
            day = parse_iso(row["occurred_at"]).astimezone(zones[row["user_id"]]).date()
            groups.setdefault((row["user_id"], day), []).append(row)
        window = f"{self.t.work_start:%H:%M}-{self.t.work_end:%H:%M}"
        return [
            _anomaly(
                "outside_working_hours",
                rows,
                self.t.max_seqs,
                user_id=user_id,
                day=day.isoformat(),
                detail={
                    "time_zone": zones[user_id].key,
                    "working_hours": window,
                    "borrowers": len({r["borrower_id"] for r in rows}),
                },
            )
            for (user_id, day), rows in sorted(groups.items())
        ]

    def unusual_volume(self) -> list[Anomaly]:
        """Agent-days with more distinct borrowers than the agent's own baseline allows."""
        agents = {r["user_id"]: self.zone(r["time_zone"]) for r in self.recipients if r["is_agent"]}
        shifts = {user_id: _shift(zone, self.until) for user_id, zone in agents.items()}
        # Whole local days around the period. No day at or below the floor can be unusual,
        # so the costly baseline is read only for agents with a day above it.
        end = self.until + timedelta(days=1)
        near = self.daily_counts(shifts, self.since - timedelta(days=1), end)
        candidates = {
            user_id: shifts[user_id]
            for user_id, counts in near.items()
            for day, borrowers in counts.items()
            if borrowers > self.t.volume_floor
            and _local_day_overlaps(day, agents[user_id], self.since, self.until)
        }
        if not candidates:
            return []
        lookback = self.since - timedelta(days=self.t.volume_lookback_days)
        daily = self.daily_counts(candidates, lookback, end)
        found = []
        for user_id, counts in sorted(daily.items()):
            zone = agents[user_id]
            scanned = {d for d in counts if _local_day_overlaps(d, zone, self.since, self.until)}
            for day, borrowers, median, limit in unusual_days(counts, scanned, self.t):
                start = datetime.combine(day, time.min, zone)
                span = audit_queries.user_entry_span(
                    self.db,
                    user_id,
                    to_iso(start),
                    to_iso(start + timedelta(days=1)),
                    self.t.max_seqs,
                )
                found.append(
                    {
                        **_anomaly("unusual_volume", [], self.t.max_seqs),
                        **span,
                        "user_id": user_id,
                        "day": day.isoformat(),
                        "detail": {
                            "borrowers": borrowers,
                            "baseline_median": median,
                            "threshold": limit,
                        },
                    }
                )
        return found

    def purge_unacknowledged(self) -> list[Anomaly]:
        """Purge orders older than the deadline (at the end of the period) never confirmed;
        an open order stays an anomaly until the device confirms it, whenever it began."""
        end = min(self.until, self.rt.clock())
        before = to_iso(end - timedelta(hours=self.t.purge_ack_hours))
        found = []
        for row in audit_queries.unacknowledged_purges(self.db, before, self.t.max_seqs):
            overdue = end - parse_iso(row["purge_ordered_at"])
            found.append(
                {
                    **_anomaly("purge_unacknowledged", [], self.t.max_seqs),
                    "user_id": row["user_id"],
                    "device_id": row["device_id"],
                    "borrower_id": row["borrower_id"],
                    "visit_id": row["visit_id"],
                    "first_at": row["purge_ordered_at"],
                    "seqs": json.loads(row["seqs"]),
                    "seq_count": row["seq_count"],
                    "detail": {
                        "reason": row["purge_reason"],
                        "purge_ordered_at": row["purge_ordered_at"],
                        "hours_unacknowledged": round(overdue.total_seconds() / 3600, 1),
                    },
                }
            )
        return found

    def cards_without_reports(self) -> list[Anomaly]:
        """Agents receiving cards for many more borrowers than visits they reported on."""
        found = []
        for row in audit_queries.served_and_reported(
            self.db, self.lo, self.hi, self.t.cards_min_borrowers
        ):
            if not too_few_reports(row["borrowers"], row["reported_visits"], self.t):
                continue
            span = audit_queries.user_entry_span(
                self.db, row["user_id"], self.lo, self.hi, self.t.max_seqs
            )
            found.append(
                {
                    **_anomaly("cards_without_reports", [], self.t.max_seqs),
                    **span,
                    "user_id": row["user_id"],
                    "detail": {
                        "borrowers": row["borrowers"],
                        "visits": row["visits"],
                        "reported_visits": row["reported_visits"],
                        "threshold": self.t.cards_per_report_ratio,
                    },
                }
            )
        return found


def _local_day_overlaps(day: date, zone: ZoneInfo, since: datetime, until: datetime) -> bool:
    start = datetime.combine(day, time.min, zone)
    return start < until and start + timedelta(days=1) > since
