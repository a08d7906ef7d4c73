"""Compliance on every channel: the rules a contact with a borrower is held to, one pure
function each, reading the thresholds of the CompliancePolicy (sync/compliance.py).

A contact being planned that breaks a rule is refused with the rule's code; one that was
made already (logged, imported, synced) is stored and flagged with it. Only outbound
contacts are held to these rules: a borrower who calls in has not been contacted.

| code                       | raised when                                                   |
|----------------------------|---------------------------------------------------------------|
| `outside_contact_hours`    | a call, SMS or e-mail outside the policy's contact hours in   |
|                            | the borrower's time zone, not covered by a consent in force   |
| `call_frequency_exceeded`  | more call attempts on the case within the period than allowed |
|                            | (us-regf: the 8th within 7 days, Reg F 1006.14(b)(2)(i)(A))   |
| `call_after_conversation`  | a call within the period after a telephone conversation with  |
|                            | the borrower (us-regf: 7 days, Reg F 1006.14(b)(2)(i)(B))     |
| `do_not_contact_channel`   | the borrower asked not to be contacted on this channel and    |
|                            | had not withdrawn the request                                 |
| `no_prior_notice`          | a home visit with no notice on the log or the visit before it |
|                            | (sync.compliance.check_prior_notice, fed from the log)        |

These codes are not in the agent's flag views (sync/flag_views.py): they rest on other
people's contacts and on the borrower's requests, so an agent is never told of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from .compliance import CompliancePolicy, Flag, OutOfHoursConsent
from .contacts import (
    CONVERSATION_OUTCOMES,
    EMAIL,
    LETTER,
    NOTICE,
    PHONE_CALL,
    REQUEST_CHANNEL,
    SMS,
    LoggedContact,
)

OUTSIDE_CONTACT_HOURS = "outside_contact_hours"
CALL_FREQUENCY_EXCEEDED = "call_frequency_exceeded"
CALL_AFTER_CONVERSATION = "call_after_conversation"
DO_NOT_CONTACT_CHANNEL = "do_not_contact_channel"
CONTACT_RULES: tuple[str, ...] = (
    OUTSIDE_CONTACT_HOURS,
    CALL_FREQUENCY_EXCEEDED,
    CALL_AFTER_CONVERSATION,
    DO_NOT_CONTACT_CHANNEL,
)
REMOTE_CHANNELS: frozenset[str] = frozenset({PHONE_CALL, SMS, EMAIL})
# Reg F 1006.14(b)(3): a call that does not connect to the dialed number (a busy
# signal, a network failure) is not a call placed for the frequency count.
NOT_CONNECTED: frozenset[str] = frozenset({"busy", "disconnected"})
# A written notice that reached the borrower's address (or at least left for it).
NOTICE_CHANNELS: frozenset[str] = frozenset({LETTER, NOTICE})


@dataclass(frozen=True)
class DoNotContact:
    """A borrower's request not to be contacted on a channel (sync/cases.CONTACT_CHANNELS)."""

    channel: str
    taken_at: datetime
    withdrawn_at: datetime | None = None

    def in_force(self, at: datetime) -> bool:
        """True if the request stood at that moment."""
        return self.taken_at <= at and (self.withdrawn_at is None or at < self.withdrawn_at)


@dataclass(frozen=True)
class ContactFacts:
    """What the rules know of the borrower besides the log."""

    time_zone: str
    do_not_contact: tuple[DoNotContact, ...] = ()
    consents: tuple[OutOfHoursConsent, ...] = ()


def check_contact(
    contact: LoggedContact,
    earlier: Sequence[LoggedContact],
    facts: ContactFacts,
    policy: CompliancePolicy,
) -> tuple[Flag, ...]:
    """Every rule an outbound contact breaks, given the case's other contacts (`earlier`
    may hold later ones too; only those before the contact count)."""
    if contact.direction != "outbound":
        return ()
    found = list(check_do_not_contact(contact, facts.do_not_contact))
    found += check_contact_hours(contact, facts, policy)
    if contact.channel == PHONE_CALL:
        before = [c for c in earlier if c.occurred_at < contact.occurred_at]
        found += check_call_frequency(contact, before, policy)
        found += check_call_after_conversation(contact, before, policy)
    return tuple(found)


def check_do_not_contact(
    contact: LoggedContact, requests: Iterable[DoNotContact]
) -> tuple[Flag, ...]:
    """The borrower asked not to be contacted on this channel."""
    asked = REQUEST_CHANNEL.get(contact.channel)
    if asked is None:
        return ()
    standing = [r for r in requests if r.channel == asked and r.in_force(contact.occurred_at)]
    if not standing:
        return ()
    return (
        Flag(
            DO_NOT_CONTACT_CHANNEL,
            f"The borrower asked not to be contacted by {asked}.",
            {"channel": asked, "asked_at": standing[0].taken_at.isoformat(timespec="seconds")},
        ),
    )


def check_contact_hours(
    contact: LoggedContact, facts: ContactFacts, policy: CompliancePolicy
) -> tuple[Flag, ...]:
    """A call, SMS or e-mail outside the contact hours in the borrower's time zone, unless a
    consent in force covers that hour. Letters and notices may be sent at any hour."""
    if contact.channel not in REMOTE_CHANNELS:
        return ()
    local = contact.occurred_at.astimezone(ZoneInfo(facts.time_zone))
    if policy.contact_window_start <= local.time() <= policy.contact_window_end:
        return ()
    at = contact.occurred_at
    if policy.consent_overrides_window and any(
        c.covers(at, at, [local.time()]) for c in facts.consents
    ):
        return ()
    window = (
        f"{policy.contact_window_start.strftime('%H:%M')}-"
        f"{policy.contact_window_end.strftime('%H:%M')}"
    )
    return (
        Flag(
            OUTSIDE_CONTACT_HOURS,
            f"Contact outside {window} in the borrower's time zone.",
            {"local_time": local.strftime("%H:%M"), "window": window},
        ),
    )


def check_call_frequency(
    contact: LoggedContact, before: Sequence[LoggedContact], policy: CompliancePolicy
) -> tuple[Flag, ...]:
    """More call attempts within the period than the policy allows, this one included."""
    limit = policy.max_call_attempts
    if limit is None or contact.outcome in NOT_CONNECTED:
        return ()
    since = contact.occurred_at - timedelta(days=policy.call_attempt_period_days)
    attempts = sum(
        1
        for c in before
        if c.channel == PHONE_CALL
        and c.direction == "outbound"
        and c.outcome not in NOT_CONNECTED
        and c.occurred_at > since
    )
    if attempts + 1 <= limit:
        return ()
    return (
        Flag(
            CALL_FREQUENCY_EXCEEDED,
            f"More than {limit} call attempts within {policy.call_attempt_period_days} days.",
            {
                "attempts_in_period": attempts + 1,
                "allowed": limit,
                "period_days": policy.call_attempt_period_days,
            },
        ),
    )


def check_call_after_conversation(
    contact: LoggedContact, before: Sequence[LoggedContact], policy: CompliancePolicy
) -> tuple[Flag, ...]:
    """A call within the period after a telephone conversation with the borrower."""
    pause = policy.call_pause_after_conversation_days
    if pause is None:
        return ()
    since = contact.occurred_at - timedelta(days=pause)
    talks = [
        c.occurred_at
        for c in before
        if c.channel == PHONE_CALL and c.outcome in CONVERSATION_OUTCOMES and c.occurred_at > since
    ]
    if not talks:
        return ()
    return (
        Flag(
            CALL_AFTER_CONVERSATION,
            f"A call within {pause} days after a telephone conversation.",
            {"conversation_at": max(talks).isoformat(timespec="seconds"), "period_days": pause},
        ),
    )


def notice_times(contacts: Iterable[LoggedContact]) -> tuple[datetime, ...]:
    """When written notices on the log left (outbound letters and notices)."""
    return tuple(
        sorted(
            c.occurred_at
            for c in contacts
            if c.channel in NOTICE_CHANNELS
            and c.direction == "outbound"
            and c.outcome != "returned"
        )
    )
