"""The golden corpus's world as planned: dates, time zones, agents and their phones, the
cases and visits, what changes while the phones are out, and the blobs the phones upload.
Plain values, the same on every run; world.py and build.py put them through the API.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PASSWORD = "golden-corpus-password"
DAY = date(2026, 11, 24)
# The world is planned at 14:00 UTC on DAY; the phones push from 15:00 UTC on, when the
# day is over in Asia and under way in Europe and America.
SETUP_AT = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
PUSH_FROM = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
# Borrower time zones, with a home position in each.
ZONES: tuple[tuple[str, float, float], ...] = (
    ("Asia/Shanghai", 31.20, 121.40),
    ("Asia/Kolkata", 22.57, 88.36),
    ("Europe/Berlin", 52.52, 13.40),
    ("America/New_York", 40.71, -74.00),
)
# username, badge, phones
AGENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("agent1", "B-1001", ("phone-agent1-a", "phone-agent1-b")),
    ("agent2", "B-1002", ("phone-agent2",)),
    ("agent3", "B-1003", ("phone-agent3",)),
    ("agent4", "B-1004", ("phone-agent4",)),
)
CASES = 96
PURPOSES = ("home_visit", "follow_up", "agreement_signing", "workplace_visit")
WINDOWS = ((None, None), ("09:00", "11:00"), ("14:00", "17:00"))
# Changes made after planning, while the phones are offline (case numbers).
CANCELLED_AT_SETUP = (3, 17)
REASSIGNED_AT_SETUP = (5, 21)
CASE_FLAGS_AT_SETUP = {6: "hardship", 26: "hardship", 7: "legal_hold", 8: "do_not_visit"}
# Changes made in the middle of the pushes (build.midway_changes): a visit completed by
# then cannot be cancelled or moved any more, and the refusal is recorded.
CANCELLED_MIDWAY = ("c10-today", "c30-today", "c9-tomorrow", "c17-tomorrow")
REASSIGNED_MIDWAY = ("c2-today", "c14-today", "c13-tomorrow")
HARDSHIP_MIDWAY = (12,)
# Blobs each agent uploads before pushing; `late-*` ones are uploaded midway (records that
# reference them answer retry until then); `never` is never uploaded.
UPLOADED = ("sig-borrower", "sig-agent", "photo-1", "photo-2")
UPLOADED_MIDWAY = ("late-photo", "late-sig")
NEVER_UPLOADED = "never"
# Started as a resumable upload and left half sent: a record referencing it waits (retry).
UNFINISHED = "half-sent"


@dataclass(frozen=True)
class CasePlan:
    """One case as planned: where its borrower lives and what the server holds."""

    n: int
    zone: str
    home: tuple[float, float] | None
    national_id: str | None

    @property
    def external_id(self) -> str:
        return f"G-{self.n:04d}"


@dataclass(frozen=True)
class VisitPlan:
    """One visit as planned (agent is the first assignee)."""

    key: str
    case: CasePlan
    agent: str
    visit_date: date
    purpose: str
    window: tuple[str | None, str | None]
    notice_at: datetime | None  # None: no notice recorded

    def local(self, hour: int, minute: int = 0) -> datetime:
        """A moment on the visit's day, borrower local time, as UTC."""
        moment = datetime.combine(self.visit_date, time(hour, minute), ZoneInfo(self.case.zone))
        return moment.astimezone(UTC)


def case_plans() -> list[CasePlan]:
    """The corpus's cases: time zones in turn, a few without an ID number or a geocode."""
    plans = []
    for n in range(1, CASES + 1):
        zone, lat, lon = ZONES[n % len(ZONES)]
        home = None if n % 13 == 0 else (round(lat + n / 1000, 6), round(lon + n / 1000, 6))
        national_id = None if n % 11 == 0 else f"G{n:03d}1990{n:04d}X{n % 10}"
        plans.append(CasePlan(n, zone, home, national_id))
    return plans


def visit_plans(cases: list[CasePlan]) -> list[VisitPlan]:
    """A visit today for every case; yesterday's for some, tomorrow's (another agent) for
    others. Purposes, windows and notices in turn."""
    names = [a[0] for a in AGENTS]
    plans = []
    for case in cases:
        n = case.n
        agent = names[n % len(names)]
        purpose = PURPOSES[(n // 4) % len(PURPOSES)]
        notice_at: datetime | None = SETUP_AT - timedelta(days=2)
        if n % 5 == 0:
            notice_at = None
        today = VisitPlan(f"c{n}-today", case, agent, DAY, purpose, WINDOWS[n % 3], notice_at)
        if n % 7 == 0:  # notice recorded only at noon, after a morning arrival
            noon = datetime.combine(DAY, time(12, 0), ZoneInfo(case.zone)).astimezone(UTC)
            today = VisitPlan(
                today.key, case, agent, DAY, purpose, (None, None), min(noon, SETUP_AT)
            )
        plans.append(today)
        if n % 3 == 0:
            yesterday = DAY - timedelta(days=1)
            plans.append(
                VisitPlan(
                    f"c{n}-yesterday", case, agent, yesterday, "home_visit", (None, None), notice_at
                )
            )
        if n % 4 == 1:
            other = names[(n + 1) % len(names)]
            tomorrow = DAY + timedelta(days=1)
            plans.append(
                VisitPlan(
                    f"c{n}-tomorrow",
                    case,
                    other,
                    tomorrow,
                    "follow_up",
                    ("09:00", "12:00"),
                    notice_at,
                )
            )
    return plans


def blob_bytes(agent: str, name: str) -> bytes:
    """A small PNG-looking blob, different per agent and name."""
    return b"\x89PNG\r\n\x1a\n" + f"golden:{agent}:{name}".encode() * 4


def blob_sha(agent: str, name: str) -> str:
    return hashlib.sha256(blob_bytes(agent, name)).hexdigest()
