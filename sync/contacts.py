"""The contact log's vocabulary and rules: channels, outcomes per channel, how the same
contact is recognised from two sources, and the collections ladder a case climbs.

Pure values in and out (no Flask, no database): the server, the wire schemas and the phone
read these names from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .canonical import CanonicalFormError, parse_aware_datetime
from .records import MalformedRecord
from .visits import VISIT_OUTCOMES

CONTACT = "contact"  # the sync record kind a phone sends for a call or message it made

LETTER = "letter"
NOTICE = "notice"
PHONE_CALL = "phone_call"
SMS = "sms"
EMAIL = "email"
HOME_VISIT = "home_visit"
LEGAL_LETTER = "legal_letter"
CHANNELS: tuple[str, ...] = (LETTER, NOTICE, PHONE_CALL, SMS, EMAIL, HOME_VISIT, LEGAL_LETTER)
DIRECTIONS: tuple[str, ...] = ("outbound", "inbound")
# What a phone may log offline: calls and messages made in the field. A home visit reaches
# the log through its visit report, never as a contact record.
FIELD_CHANNELS: tuple[str, ...] = (PHONE_CALL, SMS)
# Staff log these over the API and by import; home visits come from visit reports.
LOGGED_CHANNELS: tuple[str, ...] = tuple(c for c in CHANNELS if c != HOME_VISIT)

_WRITTEN = ("sent", "delivered", "returned", "received", "refused")
OUTCOMES: Mapping[str, tuple[str, ...]] = {
    LETTER: _WRITTEN,
    NOTICE: _WRITTEN,
    LEGAL_LETTER: _WRITTEN,
    PHONE_CALL: (
        "reached",
        "promise",
        "refused",
        "dispute",
        "callback_requested",
        "third_party",
        "no_answer",
        "busy",
        "voicemail",
        "wrong_number",
        "disconnected",
    ),
    SMS: ("sent", "delivered", "failed", "received", "promise", "refused", "dispute"),
    EMAIL: ("sent", "delivered", "bounced", "received", "promise", "refused", "dispute"),
    HOME_VISIT: VISIT_OUTCOMES,
}
# A telephone conversation (Reg F 1006.14(b)(2)(i)(B)): the borrower was reached in person.
CONVERSATION_OUTCOMES: frozenset[str] = frozenset(
    {"reached", "promise", "refused", "dispute", "callback_requested"}
)

# The ladder a case climbs, in order, and the channels of each rung.
RUNGS: tuple[str, ...] = ("notice", "phone", "message", "home_visit", "legal")
RUNG_OF: Mapping[str, str] = {
    LETTER: "notice",
    NOTICE: "notice",
    PHONE_CALL: "phone",
    SMS: "message",
    EMAIL: "message",
    HOME_VISIT: "home_visit",
    LEGAL_LETTER: "legal",
}
RUNG_CHANNELS: Mapping[str, tuple[str, ...]] = {
    rung: tuple(c for c in CHANNELS if RUNG_OF[c] == rung) for rung in RUNGS
}
# The channel a borrower's do-not-contact request names (sync/cases.CONTACT_CHANNELS) for
# each log channel; notices and legal letters are letters.
REQUEST_CHANNEL: Mapping[str, str | None] = {
    LETTER: "letter",
    NOTICE: "letter",
    LEGAL_LETTER: "letter",
    PHONE_CALL: "phone",
    SMS: "sms",
    EMAIL: "email",
    HOME_VISIT: None,  # a do-not-visit request, not a do-not-contact one
}


def check_outcome(channel: str, outcome: str) -> str | None:
    """None if the outcome belongs to the channel's vocabulary, else why not."""
    allowed = OUTCOMES.get(channel)
    if allowed is None:
        return f"unknown channel {channel!r}"
    if outcome not in allowed:
        return f"not an outcome of {channel} (one of {', '.join(allowed)})"
    return None


PROMISE = "promise"


def check_promise(outcome: str, amount: object, due: object) -> tuple[str, str] | None:
    """None if a promise's amount and date fit the outcome, else (field, why): both or
    neither, and only on a contact whose outcome is `promise`."""
    given = [name for name, value in (("promise_amount", amount), ("promise_date", due)) if value]
    if not given:
        return None
    if outcome != PROMISE:
        return given[0], "only a contact with outcome 'promise' carries a promise"
    if len(given) == 1:
        missing = "promise_date" if given == ["promise_amount"] else "promise_amount"
        return missing, "a promise needs both an amount and a date"
    return None


def agent_key(user_id: int | None, agent_name: str | None) -> str:
    """Who made the contact, as the natural key holds it: a Doorstep user, or the name an
    external system (a dialer, an SMS gateway) gave, folded to lower case."""
    if user_id is not None:
        return f"user:{user_id}"
    return f"ext:{(agent_name or '').strip().casefold()}"


def natural_key(case_id: int, channel: str, direction: str, occurred_at: datetime, who: str) -> str:
    """The same contact from any source: case, channel, direction, UTC second, who."""
    second = occurred_at.astimezone(UTC).replace(microsecond=0)
    # isoformat is the same text as strftime('%Y-%m-%dT%H:%M:%SZ') from year 1000 on (which
    # it writes with four digits, strftime with fewer), and several times faster.
    text = (
        second.isoformat()[:19] + "Z"
        if second.year >= 1000
        else second.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    return f"{case_id}|{channel}|{direction}|{text}|{who}"


@dataclass(frozen=True)
class FieldContact:
    """The parts of a `contact` record body the rules read."""

    channel: str
    direction: str
    occurred_at: datetime
    outcome: str


def parse_contact(body: Mapping[str, Any]) -> FieldContact:
    """Read a `contact` record body; raises MalformedRecord naming the field."""
    channel = body.get("channel")
    if channel not in FIELD_CHANNELS:
        raise MalformedRecord("body.channel", f"must be one of {', '.join(FIELD_CHANNELS)}")
    direction = body.get("direction", "outbound")
    if direction not in DIRECTIONS:
        raise MalformedRecord("body.direction", f"must be one of {', '.join(DIRECTIONS)}")
    outcome = body.get("outcome")
    problem = check_outcome(channel, outcome) if isinstance(outcome, str) else "is required"
    if problem:
        raise MalformedRecord("body.outcome", problem)
    try:
        occurred_at = parse_aware_datetime("body.occurred_at", body.get("occurred_at"))
    except CanonicalFormError as error:
        raise MalformedRecord("body.occurred_at", error.message) from None
    return FieldContact(channel, direction, occurred_at, outcome)


# -- the ladder ------------------------------------------------------------------------


@dataclass(frozen=True)
class LoggedContact:
    """One entry of a case's log, as the ladder reads it."""

    channel: str
    direction: str
    occurred_at: datetime
    outcome: str


# The reason of a next step that waits for a pending promise or instalment.
AWAITING_PROMISE = "awaiting_promise"


@dataclass(frozen=True)
class RungState:
    """What happened on one rung of the ladder."""

    rung: str
    channels: tuple[str, ...]
    contacts: int
    first_at: datetime | None
    last_at: datetime | None
    last_outcome: str | None
    outcomes: Mapping[str, int]


@dataclass(frozen=True)
class NextAction:
    """The next lawful step: a rung and channel, from when; or none, and why. While a
    promise is pending, the step is the one to take if it breaks, `awaiting_until` its
    deadline and `earliest_at` None."""

    rung: str | None
    channel: str | None
    earliest_at: datetime | None
    reason: str
    awaiting_until: datetime | None = None


@dataclass(frozen=True)
class LadderFacts:
    """What decides the next lawful step besides the log itself."""

    time_zone: str
    contact_start: time  # calls, SMS, e-mail
    contact_end: time
    visit_start: time
    visit_end: time
    takes_visits: bool
    legal: bool
    closed: bool
    blocked_channels: frozenset[str]  # do-not-contact channels (sync/cases.CONTACT_CHANNELS)
    # The end of the grace period of the earliest promise or instalment still pending: no
    # rung is climbed while the borrower is keeping their word.
    awaiting_until: datetime | None = None


@dataclass(frozen=True)
class Ladder:
    """A case's ladder: every rung, the current one and since when, the next lawful step."""

    rungs: tuple[RungState, ...]
    current_rung: str | None
    on_rung_since: datetime | None
    next_action: NextAction


def climb(contacts: Iterable[LoggedContact], facts: LadderFacts, now: datetime) -> Ladder:
    """The ladder of a case: the current rung is the highest one reached (a case under
    legal status is on `legal`), the next lawful step the first rung above it that the
    borrower's requests and the case still allow, at the earliest lawful hour."""
    by_rung: dict[str, list[LoggedContact]] = {rung: [] for rung in RUNGS}
    for contact in contacts:
        by_rung[RUNG_OF[contact.channel]].append(contact)
    rungs = tuple(_rung_state(rung, sorted(by_rung[rung], key=_when)) for rung in RUNGS)
    reached = [state for state in rungs if state.contacts]
    current = reached[-1] if reached else None
    current_rung = current.rung if current else None
    since = current.first_at if current else None
    if facts.legal and current_rung != "legal":
        current_rung, since = "legal", None
    action = _next_action(rungs, current_rung, facts, now)
    if facts.awaiting_until is not None and now < facts.awaiting_until and action.rung:
        action = NextAction(
            action.rung, action.channel, None, AWAITING_PROMISE, facts.awaiting_until
        )
    return Ladder(rungs, current_rung, since, action)


def _when(contact: LoggedContact) -> datetime:
    return contact.occurred_at


def _rung_state(rung: str, contacts: Sequence[LoggedContact]) -> RungState:
    outcomes: dict[str, int] = {}
    for contact in contacts:
        outcomes[contact.outcome] = outcomes.get(contact.outcome, 0) + 1
    return RungState(
        rung=rung,
        channels=RUNG_CHANNELS[rung],
        contacts=len(contacts),
        first_at=contacts[0].occurred_at if contacts else None,
        last_at=contacts[-1].occurred_at if contacts else None,
        last_outcome=contacts[-1].outcome if contacts else None,
        outcomes=outcomes,
    )


def _next_action(
    rungs: tuple[RungState, ...], current: str | None, facts: LadderFacts, now: datetime
) -> NextAction:
    if facts.closed:
        return NextAction(None, None, None, "case_closed")
    if facts.legal or current == "legal":
        return NextAction(None, None, None, "in_legal")
    start = RUNGS.index(current) + 1 if current else 0
    noticed = any(s.contacts for s in rungs if s.rung == "notice")
    for rung in RUNGS[start:]:
        if rung == "home_visit":
            if not facts.takes_visits:
                continue
            if not noticed:
                # A home visit needs a prior notice on record: send one first.
                channel = _open_channel("notice", facts)
                if channel is None:
                    continue
                return NextAction("notice", channel, now, "notice_before_visit")
        channel = _open_channel(rung, facts)
        if channel is None:
            continue
        return NextAction(rung, channel, _earliest(channel, now, facts), "next_rung")
    return NextAction(None, None, None, "no_lawful_channel")


def _open_channel(rung: str, facts: LadderFacts) -> str | None:
    for channel in RUNG_CHANNELS[rung]:
        asked = REQUEST_CHANNEL[channel]
        if asked is None or asked not in facts.blocked_channels:
            return channel
    return None


def _earliest(channel: str, now: datetime, facts: LadderFacts) -> datetime:
    """When the channel may next be used: letters at once; calls, messages and visits
    inside their hours in the borrower's time zone."""
    if channel in (LETTER, NOTICE, LEGAL_LETTER):
        return now
    if channel == HOME_VISIT:
        return _lawful_hour(now, facts.time_zone, facts.visit_start, facts.visit_end)
    return _lawful_hour(now, facts.time_zone, facts.contact_start, facts.contact_end)


def _lawful_hour(now: datetime, time_zone: str, start: time, end: time) -> datetime:
    """`now` if it lies inside the hours in the borrower's time zone, else their next
    opening."""
    zone = ZoneInfo(time_zone)
    local = now.astimezone(zone)
    if start <= local.time() <= end:
        return now
    day = local.date() if local.time() < start else local.date() + timedelta(1)
    return datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
