"""The channel rules: contact hours, Reg F call caps, do-not-contact per channel."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from sync.compliance import OutOfHoursConsent, profile
from sync.contact_rules import (
    CALL_AFTER_CONVERSATION,
    CALL_FREQUENCY_EXCEEDED,
    DO_NOT_CONTACT_CHANNEL,
    OUTSIDE_CONTACT_HOURS,
    ContactFacts,
    DoNotContact,
    check_contact,
    notice_times,
)
from sync.contacts import LoggedContact

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
FACTS = ContactFacts(time_zone="Asia/Shanghai")
REGF = profile("us-regf")


def contact(channel="phone_call", at=NOW, outcome="no_answer", direction="outbound"):
    return LoggedContact(channel, direction, at, outcome)


def codes(found) -> set[str]:
    return {flag.code for flag in found}


def calls(n: int, outcome: str = "no_answer", days: float = 6.5) -> list[LoggedContact]:
    """n attempts spread over the `days` before NOW."""
    return [contact(at=NOW - timedelta(days=days) + timedelta(hours=i)) for i in range(n)]


@pytest.mark.parametrize(
    ("earlier", "expected"),
    [
        (calls(6), set()),  # the 7th attempt
        (calls(7), {CALL_FREQUENCY_EXCEEDED}),  # the 8th
        (calls(7, days=7.5), set()),  # all older than the period
        ([contact(outcome="busy", at=NOW - timedelta(hours=i + 1)) for i in range(9)], set()),
        ([contact(outcome="reached", at=NOW - timedelta(days=6))], {CALL_AFTER_CONVERSATION}),
        ([contact(outcome="reached", at=NOW - timedelta(days=8))], set()),
        ([contact(channel="sms", outcome="promise", at=NOW - timedelta(days=1))], set()),
        # later contacts do not count against an earlier one
        ([contact(outcome="reached", at=NOW + timedelta(hours=1))], set()),
    ],
)
def test_regf_call_caps(earlier, expected):
    assert codes(check_contact(contact(), earlier, FACTS, REGF)) == expected


def test_cn_bank_has_no_call_caps_and_calls_until_22():
    cn = profile("cn-bank")
    at = NOW + timedelta(hours=11, minutes=30)  # 21:30 local
    found = check_contact(contact(at=at), [*calls(9), contact(outcome="reached")], FACTS, cn)
    assert found == ()
    assert codes(check_contact(contact(at=at), [], FACTS, REGF)) == {OUTSIDE_CONTACT_HOURS}


@pytest.mark.parametrize(
    ("channel", "hour", "flagged"),
    [
        ("phone_call", 7, True),
        ("sms", 21.5, True),
        ("email", 12, False),
        ("letter", 23, False),
        ("legal_letter", 3, False),
    ],
)
def test_contact_hours_per_channel(channel, hour, flagged):
    at = datetime(2026, 11, 23, 16, 0, tzinfo=UTC) + timedelta(hours=hour)  # local midnight+
    found = codes(check_contact(contact(channel, at=at, outcome="sent"), [], FACTS, REGF))
    assert (OUTSIDE_CONTACT_HOURS in found) is flagged


def test_a_consent_in_force_covers_the_hour():
    at = datetime(2026, 11, 24, 13, 30, tzinfo=UTC)  # 21:30 local
    consent = OutOfHoursConsent(
        granted_at=NOW - timedelta(days=1), window_start=time(21, 0), window_end=time(22, 0)
    )
    facts = replace(FACTS, consents=(consent,))
    assert check_contact(contact(at=at), [], facts, REGF) == ()


def test_do_not_contact_is_per_channel_and_ends_when_withdrawn():
    asked = DoNotContact("sms", taken_at=NOW - timedelta(days=2), withdrawn_at=NOW)
    facts = replace(FACTS, do_not_contact=(asked,))
    before = NOW - timedelta(hours=1)
    assert codes(check_contact(contact("sms", before, "sent"), [], facts, REGF)) == {
        DO_NOT_CONTACT_CHANNEL
    }
    assert check_contact(contact("sms", NOW, "sent"), [], facts, REGF) == ()
    assert check_contact(contact("letter", before, "sent"), [], facts, REGF) == ()
    assert check_contact(contact("phone_call", before), [], facts, REGF) == ()


def test_inbound_contacts_break_no_rule():
    asked = DoNotContact("phone", taken_at=NOW - timedelta(days=2))
    facts = replace(FACTS, do_not_contact=(asked,))
    late = NOW + timedelta(hours=13)
    assert check_contact(contact(at=late, direction="inbound"), calls(9), facts, REGF) == ()


def test_only_outbound_notices_that_were_not_returned_count_as_notice():
    log = [
        contact("letter", NOW - timedelta(days=3), "sent"),
        contact("notice", NOW - timedelta(days=2), "returned"),
        contact("letter", NOW - timedelta(days=1), "received", direction="inbound"),
        contact("phone_call", NOW - timedelta(hours=1)),
    ]
    assert notice_times(log) == (NOW - timedelta(days=3),)
