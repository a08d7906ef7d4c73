"""Compliance policy (SPEC §6), its named profiles, and one pure function per rule.

Every rule returns zero or more flags; a flag never drops a record, it marks it for review.
Flag codes are stable and part of the wire contract:

| code                          | raised when                                                      |
|-------------------------------|------------------------------------------------------------------|
| `outside_visit_hours`         | arrival or departure, in the borrower's time zone, falls outside |
|                               | the policy's visit window and no consent in force covers it      |
| `consent_expired`             | the visit relied on out-of-hours consent for those hours that    |
|                               | had expired, was withdrawn or was not yet given; comes with      |
|                               | `outside_visit_hours`                                            |
| `outside_planned_window`      | arrival is outside the visit's planned window (the one the       |
|                               | borrower was told about) by more than the policy's grace         |
| `visit_frequency_exceeded`    | more home visits to the case within the rolling period than the  |
|                               | policy allows                                                    |
| `location_mismatch`           | the GPS fix is farther from the home than the tolerance plus the |
|                               | fix's accuracy                                                   |
| `location_unavailable`        | a home visit report has no fix, or one too imprecise to confirm  |
|                               | the place                                                        |
| `no_prior_notice`             | a home visit with no appointment or notice recorded before the   |
|                               | arrival                                                          |
| `credential_not_shown_first`  | no matching agent-credential confirmation recorded by the time   |
|                               | of first contact (plus the policy's grace)                       |
| `third_party_debt_discussed`  | the report says the debt was discussed with a third party        |
| `case_do_not_visit`           | the case is marked do-not-visit                                  |
| `case_hardship`               | the case is marked hardship                                      |
| `case_legal_hold`             | the case is under legal hold                                     |
| `clock_skew`                  | device send time, or a record's time, is off the server clock by |
|                               | more than the limit                                              |
| `late_sync`                   | received more than the limit after it was recorded               |
| `badge_mismatch`              | the badge number shown is not the agent's                        |
| `id_mismatch`                 | the typed ID characters did not match the borrower's ID          |
| `id_unverifiable`             | the server had no ID number to compare against                   |
| `id_check_limit_reached`      | more typed-ID checks for the borrower in the period than allowed |
| `id_not_compared`             | the agent could not hold the visit's card: typed ID not compared |
| `visit_cancelled`             | the visit was cancelled (typically while the agent was offline)  |
| `visit_reassigned`            | the visit was the agent's but is now assigned elsewhere          |
| `competing_agreement`         | another agreement already exists for the same case               |

The last three are raised by reconciliation (sync.reconcile); the rest live here. Flags are
stored with these messages and details for reviewers; what an agent is told of each code is
its agent view, in sync/flag_views.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .geo import GeoFix, haversine_m

OUTSIDE_VISIT_HOURS = "outside_visit_hours"
CONSENT_EXPIRED = "consent_expired"
OUTSIDE_PLANNED_WINDOW = "outside_planned_window"
VISIT_FREQUENCY_EXCEEDED = "visit_frequency_exceeded"
LOCATION_MISMATCH = "location_mismatch"
LOCATION_UNAVAILABLE = "location_unavailable"
NO_PRIOR_NOTICE = "no_prior_notice"
CREDENTIAL_NOT_SHOWN_FIRST = "credential_not_shown_first"
THIRD_PARTY_DEBT_DISCUSSED = "third_party_debt_discussed"
CASE_DO_NOT_VISIT = "case_do_not_visit"
CASE_HARDSHIP = "case_hardship"
CASE_LEGAL_HOLD = "case_legal_hold"
CLOCK_SKEW = "clock_skew"
LATE_SYNC = "late_sync"
BADGE_MISMATCH = "badge_mismatch"
ID_MISMATCH = "id_mismatch"
ID_UNVERIFIABLE = "id_unverifiable"
ID_CHECK_LIMIT_REACHED = "id_check_limit_reached"
ID_NOT_COMPARED = "id_not_compared"
VISIT_CANCELLED = "visit_cancelled"
VISIT_REASSIGNED = "visit_reassigned"
COMPETING_AGREEMENT = "competing_agreement"


@dataclass(frozen=True)
class Flag:
    """A reason a stored record needs compliance review."""

    code: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The wire form."""
        return {"code": self.code, "message": self.message, "details": dict(self.details)}


@dataclass(frozen=True)
class OutOfHoursConsent:
    """The borrower's recorded agreement to visits outside the lawful window: in force from
    `granted_at` until it expires or is withdrawn, for the hours of its own window (borrower
    local time, which may run past midnight: 21:00-07:00); no window means any hour."""

    granted_at: datetime
    expires_at: datetime | None = None
    window_start: time | None = None
    window_end: time | None = None
    withdrawn_at: datetime | None = None

    @property
    def ends_at(self) -> datetime | None:
        """When the consent stops: its expiry or its withdrawal, whichever comes first."""
        ends = [t for t in (self.expires_at, self.withdrawn_at) if t is not None]
        return min(ends) if ends else None

    def in_force(self, start: datetime, end: datetime) -> bool:
        """True if the consent was in force for the whole span."""
        ends = self.ends_at
        return self.granted_at <= start and (ends is None or end < ends)

    def allows(self, local: time) -> bool:
        """True if this local time of day lies inside the consented window."""
        if self.window_start is None or self.window_end is None:
            return True
        if self.window_start <= self.window_end:
            return self.window_start <= local <= self.window_end
        return local >= self.window_start or local <= self.window_end

    def covers(self, start: datetime, end: datetime, local_times: Iterable[time] = ()) -> bool:
        """True if the consent was in force for the whole span and its window holds every
        one of these local times."""
        return self.in_force(start, end) and all(self.allows(t) for t in local_times)


class InvalidPolicy(ValueError):
    """A compliance policy or override is not valid."""

    code = "invalid_policy"


@dataclass(frozen=True)
class CompliancePolicy:
    """The thresholds every rule reads; start from a profile and override by configuration."""

    name: str = "default"
    visit_window_start: time = time(8, 0)
    visit_window_end: time = time(21, 0)
    consent_overrides_window: bool = True
    # A disputed debt is not collected until it is verified (Reg F 1006.34, FDCPA 809(b)):
    # the case takes no visits, like a do-not-visit one.
    dispute_stops_visits: bool = True
    max_home_visits_per_case: int = 1
    home_visit_period_days: int = 7
    location_tolerance_m: float = 500.0
    # A fix vaguer than this would "match" half a district, so it cannot confirm the place.
    max_fix_accuracy_m: float = 1000.0
    prior_notice_required: bool = True
    credential_before_contact: bool = True
    # The app stamps first contact as the agent knocks; the badge follows within moments.
    credential_grace_s: int = 120
    # None switches the planned-window rule off.
    planned_window_grace_min: int | None = 30
    clock_skew_limit_s: int = 300
    late_sync_limit_s: int = 24 * 3600
    # Calls, SMS and e-mails, borrower local time (sync/contact_rules.py); letters any time.
    contact_window_start: time = time(8, 0)
    contact_window_end: time = time(21, 0)
    # Reg F 1006.14(b)(2): more than 7 call attempts within 7 days, or a call within 7 days
    # after a telephone conversation, is presumed harassment. None switches a cap off.
    max_call_attempts: int | None = 7
    call_attempt_period_days: int = 7
    call_pause_after_conversation_days: int | None = 7

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidPolicy("name must not be empty")
        if not self.visit_window_start < self.visit_window_end:
            raise InvalidPolicy("visit_window_start must be before visit_window_end")
        if not self.contact_window_start < self.contact_window_end:
            raise InvalidPolicy("contact_window_start must be before contact_window_end")
        positive = (
            "max_home_visits_per_case",
            "home_visit_period_days",
            "clock_skew_limit_s",
            "late_sync_limit_s",
            "call_attempt_period_days",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise InvalidPolicy(f"{name} must be at least 1")
        for name in ("location_tolerance_m", "max_fix_accuracy_m", "credential_grace_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise InvalidPolicy(f"{name} must be a finite number >= 0")
        if self.planned_window_grace_min is not None and self.planned_window_grace_min < 0:
            raise InvalidPolicy("planned_window_grace_min must be >= 0 or null")
        for name in ("max_call_attempts", "call_pause_after_conversation_days"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InvalidPolicy(f"{name} must be at least 1 or null")

    def to_dict(self) -> dict[str, Any]:
        """The policy as JSON-friendly values, in the shape policy_from_dict reads."""
        data = asdict(self)
        data["visit_window_start"] = self.visit_window_start.strftime("%H:%M")
        data["visit_window_end"] = self.visit_window_end.strftime("%H:%M")
        data["contact_window_start"] = self.contact_window_start.strftime("%H:%M")
        data["contact_window_end"] = self.contact_window_end.strftime("%H:%M")
        return data


PROFILES: Mapping[str, CompliancePolicy] = {
    # Reg F 12 CFR 1006.6(b)(1): before 8 a.m. or after 9 p.m. local time is inconvenient.
    "default": CompliancePolicy(),
    # China Banking Association / NIFA guidelines allow collection until 22:00.
    # Calls until 22:00 as well; no numeric call cap in the sources this profile rests on.
    "cn-bank": CompliancePolicy(
        name="cn-bank",
        visit_window_end=time(22, 0),
        contact_window_end=time(22, 0),
        max_call_attempts=None,
        call_pause_after_conversation_days=None,
    ),
    "us-regf": CompliancePolicy(name="us-regf"),
}


def profile(name: str) -> CompliancePolicy:
    """The named profile; raises InvalidPolicy for an unknown name."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise InvalidPolicy(f"unknown compliance profile {name!r} (known: {known})") from None


def policy_from_dict(data: Mapping[str, Any]) -> CompliancePolicy:
    """A policy from configuration: `profile` picks the base, other keys override it."""
    base = profile(data.get("profile", "default"))
    overrides: dict[str, Any] = {}
    types = {f.name: f.type for f in fields(CompliancePolicy)}
    for key, value in data.items():
        if key == "profile":
            continue
        if key not in types:
            raise InvalidPolicy(f"unknown policy setting {key!r}")
        overrides[key] = _coerce_setting(key, types[key], value)
    try:
        return replace(base, **overrides)
    except InvalidPolicy:
        raise
    except (TypeError, ValueError) as error:
        raise InvalidPolicy(str(error)) from None


def _coerce_setting(key: str, type_name: str, value: Any) -> Any:
    """Check one configured value against the field's declared type."""
    if type_name == "time":
        return parse_hhmm(value, key)
    if value is None and type_name.endswith("| None"):
        return None
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    accepted = {
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
        "int": is_number and isinstance(value, int),
        "int | None": is_number and isinstance(value, int),
        "float": is_number,
    }
    if not accepted.get(type_name, False):
        raise InvalidPolicy(f"{key} must be of type {type_name}, got {value!r}")
    return float(value) if type_name == "float" else value


def parse_hhmm(value: object, name: str = "time") -> time:
    """A wall-clock time from 'HH:MM'; raises InvalidPolicy otherwise."""
    if isinstance(value, str) and len(value) == 5 and value[2] == ":":
        hours, minutes = value[:2], value[3:]
        if hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60:
            return time(int(hours), int(minutes))
    raise InvalidPolicy(f"{name} must be 'HH:MM', got {value!r}")


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _hhmm(moment: time | None) -> str:
    return moment.strftime("%H:%M") if moment is not None else ""


def check_visit_hours(
    arrived_at: datetime,
    departed_at: datetime | None,
    time_zone: str,
    consent: OutOfHoursConsent | Iterable[OutOfHoursConsent] | None,
    policy: CompliancePolicy,
) -> tuple[Flag, ...]:
    """Arrival and departure must fall within the window in the borrower's local time, or
    within the window of a consent in force for the whole visit."""
    zone = ZoneInfo(time_zone)
    start, end = policy.visit_window_start, policy.visit_window_end
    outside = [
        moment.astimezone(zone)
        for moment in (arrived_at, departed_at)
        if moment is not None and not start <= moment.astimezone(zone).time() <= end
    ]
    if not outside:
        return ()
    last = departed_at or arrived_at
    hours = [moment.time() for moment in outside]
    consents = _consents(consent) if policy.consent_overrides_window else []
    if any(c.covers(arrived_at, last, hours) for c in consents):
        return ()
    window = f"{start:%H:%M}-{end:%H:%M}"
    details: dict[str, Any] = {
        "local_times": [_stamp(moment) for moment in outside],
        "window": window,
        "time_zone": time_zone,
    }
    flags = [Flag(OUTSIDE_VISIT_HOURS, f"Visit outside {window} borrower local time.", details)]
    # A consent for these hours that was not in force (expired, withdrawn, not yet given).
    relied_on = [c for c in consents if all(c.allows(hour) for hour in hours)]
    if relied_on:
        latest = max(relied_on, key=lambda c: c.granted_at)
        consent_details = {
            "granted_at": _stamp(latest.granted_at),
            "expires_at": _stamp(latest.expires_at) if latest.expires_at else None,
            "withdrawn_at": _stamp(latest.withdrawn_at) if latest.withdrawn_at else None,
        }
        flags.append(
            Flag(
                CONSENT_EXPIRED,
                "Out-of-hours consent was not in force at the visit.",
                consent_details,
            )
        )
    return tuple(flags)


def _consents(
    consent: OutOfHoursConsent | Iterable[OutOfHoursConsent] | None,
) -> list[OutOfHoursConsent]:
    if consent is None:
        return []
    if isinstance(consent, OutOfHoursConsent):
        return [consent]
    return list(consent)


def check_planned_window(
    arrived_at: datetime,
    visit_date: date,
    window_start: time | None,
    window_end: time | None,
    time_zone: str,
    policy: CompliancePolicy,
) -> tuple[Flag, ...]:
    """Arrival must fall within the visit's planned window, give or take the grace."""
    grace_min = policy.planned_window_grace_min
    if grace_min is None or (window_start is None and window_end is None):
        return ()
    zone = ZoneInfo(time_zone)
    grace = timedelta(minutes=grace_min)
    early = window_start is not None and arrived_at < (
        datetime.combine(visit_date, window_start, zone) - grace
    )
    late = window_end is not None and arrived_at > (
        datetime.combine(visit_date, window_end, zone) + grace
    )
    if not (early or late):
        return ()
    planned = f"{visit_date} {_hhmm(window_start)}-{_hhmm(window_end)}"
    details = {
        "arrived_local": _stamp(arrived_at.astimezone(zone)),
        "planned": planned,
        "grace_min": grace_min,
    }
    return (Flag(OUTSIDE_PLANNED_WINDOW, "Arrival outside the visit's planned window.", details),)


def check_visit_frequency(
    arrived_at: datetime,
    other_home_visits: Iterable[datetime],
    policy: CompliancePolicy,
    own_home_visits: Iterable[datetime] = (),
) -> tuple[Flag, ...]:
    """At most N home visits to a case in any rolling period, counting this one.

    `own_home_visits` are those of the other visits the same agent reported: their count is
    kept apart so the agent's view of the flag can rest on the agent's own visits alone."""
    period = timedelta(days=policy.home_visit_period_days)
    # Symmetric window: whichever of two close visits syncs second is flagged, in any order.
    nearby = sorted(t for t in other_home_visits if abs(t - arrived_at) < period)
    if len(nearby) + 1 <= policy.max_home_visits_per_case:
        return ()
    own = [t for t in own_home_visits if abs(t - arrived_at) < period]
    details = {
        "visits_in_period": len(nearby) + 1,
        "allowed": policy.max_home_visits_per_case,
        "period_days": policy.home_visit_period_days,
        "other_visits": [_stamp(t) for t in nearby],
        "own_visits_in_period": len(own) + 1,
    }
    message = (
        f"More than {policy.max_home_visits_per_case} home visit(s) to this case "
        f"within {policy.home_visit_period_days} days."
    )
    return (Flag(VISIT_FREQUENCY_EXCEEDED, message, details),)


def check_location(
    fix: GeoFix | None, home_lat: float | None, home_lon: float | None, policy: CompliancePolicy
) -> tuple[Flag, ...]:
    """The fix must lie within the tolerance, widened by its own accuracy, of the home."""
    if home_lat is None or home_lon is None:
        return ()  # No geocoded address: there is nothing to compare against.
    if fix is None:
        return (Flag(LOCATION_UNAVAILABLE, "The report has no GPS fix.", {"reason": "no_fix"}),)
    if fix.accuracy_m > policy.max_fix_accuracy_m:
        details = {
            "reason": "imprecise",
            "accuracy_m": fix.accuracy_m,
            "max_accuracy_m": policy.max_fix_accuracy_m,
        }
        return (
            Flag(
                LOCATION_UNAVAILABLE, "The GPS fix is too imprecise to confirm the place.", details
            ),
        )
    distance = haversine_m(fix.lat, fix.lon, home_lat, home_lon)
    allowed = policy.location_tolerance_m + fix.accuracy_m
    if distance <= allowed:
        return ()
    details = {
        "distance_m": round(distance, 1),
        "allowed_m": round(allowed, 1),
        "accuracy_m": fix.accuracy_m,
    }
    return (
        Flag(LOCATION_MISMATCH, f"Report made {distance:.0f} m from the home address.", details),
    )


def check_prior_notice(
    arrived_at: datetime,
    notice_given: bool,
    notice_given_at: datetime | None,
    policy: CompliancePolicy,
) -> tuple[Flag, ...]:
    """A home visit needs an appointment or notice recorded before the arrival."""
    if not policy.prior_notice_required:
        return ()
    if not notice_given:
        return (Flag(NO_PRIOR_NOTICE, "No appointment or notice was recorded for this visit.", {}),)
    if notice_given_at is not None and notice_given_at > arrived_at:
        details = {"notice_given_at": _stamp(notice_given_at), "arrived_at": _stamp(arrived_at)}
        return (Flag(NO_PRIOR_NOTICE, "Notice was recorded only after the arrival.", details),)
    return ()


def check_credential_first(
    contact_at: datetime | None, credential_times: Iterable[datetime], policy: CompliancePolicy
) -> tuple[Flag, ...]:
    """The agent must show its credential before (or within the grace of) first contact."""
    if not policy.credential_before_contact or contact_at is None:
        return ()
    earliest = min(credential_times, default=None)
    if earliest is None:
        return (
            Flag(
                CREDENTIAL_NOT_SHOWN_FIRST,
                "No agent credential confirmation was recorded for this visit.",
                {"contact_at": _stamp(contact_at)},
            ),
        )
    if earliest > contact_at + timedelta(seconds=policy.credential_grace_s):
        details = {
            "contact_at": _stamp(contact_at),
            "credential_at": _stamp(earliest),
            "grace_s": policy.credential_grace_s,
        }
        return (
            Flag(
                CREDENTIAL_NOT_SHOWN_FIRST,
                "The agent credential was shown only after contact began.",
                details,
            ),
        )
    return ()


def check_third_party(debt_discussed_with_third_party: bool) -> tuple[Flag, ...]:
    """Discussing the debt with anyone but the borrower is flagged."""
    if not debt_discussed_with_third_party:
        return ()
    return (Flag(THIRD_PARTY_DEBT_DISCUSSED, "The debt was discussed with a third party.", {}),)


def check_case_flags(hardship: bool, do_not_visit: bool, legal_hold: bool) -> tuple[Flag, ...]:
    """A record against a case under hardship, do-not-visit or legal hold is flagged."""
    found = []
    if do_not_visit:
        found.append(Flag(CASE_DO_NOT_VISIT, "The case is marked do-not-visit.", {}))
    if hardship:
        found.append(Flag(CASE_HARDSHIP, "The case is marked hardship.", {}))
    if legal_hold:
        found.append(Flag(CASE_LEGAL_HOLD, "The case is under legal hold.", {}))
    return tuple(found)


def check_clock_skew(
    device_sent_at: datetime | None,
    recorded_at: datetime,
    received_at: datetime,
    policy: CompliancePolicy,
) -> tuple[Flag, ...]:
    """The device clock must agree with the server's, now and when the record was made."""
    limit = policy.clock_skew_limit_s
    if device_sent_at is not None:
        skew = (device_sent_at - received_at).total_seconds()
        if abs(skew) > limit:
            details = {"skew_s": round(skew, 3), "limit_s": limit}
            return (Flag(CLOCK_SKEW, f"Device clock is {skew:+.0f} s off the server's.", details),)
    # A record stamped after it arrived was made while the clock ran ahead.
    ahead = (recorded_at - received_at).total_seconds()
    if ahead > limit:
        details = {"recorded_ahead_s": round(ahead, 3), "limit_s": limit}
        return (Flag(CLOCK_SKEW, "Record is stamped later than the server received it.", details),)
    return ()


def check_late_sync(
    recorded_at: datetime, received_at: datetime, policy: CompliancePolicy
) -> tuple[Flag, ...]:
    """A record received long after it was made is flagged."""
    delay = (received_at - recorded_at).total_seconds()
    if delay <= policy.late_sync_limit_s:
        return ()
    details = {"delay_s": round(delay, 3), "limit_s": policy.late_sync_limit_s}
    return (Flag(LATE_SYNC, f"Received {delay / 3600:.1f} h after it was recorded.", details),)


def check_badge(shown: str, expected: str) -> tuple[Flag, ...]:
    """The badge shown must be the agent's own (case and outer spaces ignored)."""
    if shown.strip().upper() == expected.strip().upper():
        return ()
    return (Flag(BADGE_MISMATCH, "The badge number shown is not this agent's.", {"shown": shown}),)


_NOT_COMPARED_MESSAGES = {
    ID_CHECK_LIMIT_REACHED: "The limit of ID checks for this borrower was reached: not compared.",
    ID_NOT_COMPARED: "Not compared: the agent could not hold the visit's card at the time.",
}


def check_borrower_identity(id_match: bool | None, refused: str | None = None) -> tuple[Flag, ...]:
    """The server's comparison of the typed ID characters (the values never come here), or,
    as `refused`, the code saying why it made none: ID_CHECK_LIMIT_REACHED (the borrower's
    budget of checks is spent) or ID_NOT_COMPARED (the agent could not hold the card)."""
    if refused is not None:
        return (Flag(refused, _NOT_COMPARED_MESSAGES[refused], {}),)
    if id_match is True:
        return ()
    if id_match is False:
        return (Flag(ID_MISMATCH, "The ID document shown did not match the borrower.", {}),)
    return (Flag(ID_UNVERIFIABLE, "No ID number on file to compare against.", {}),)
