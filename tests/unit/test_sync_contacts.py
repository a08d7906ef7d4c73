"""The contact log's pure rules: outcomes per channel, the natural key, the ladder."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest

from sync.contacts import (
    LadderFacts,
    LoggedContact,
    agent_key,
    check_outcome,
    climb,
    natural_key,
    parse_contact,
)
from sync.records import MalformedRecord

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.mark.parametrize(
    ("channel", "outcome", "ok"),
    [
        ("phone_call", "voicemail", True),
        ("phone_call", "delivered", False),
        ("sms", "delivered", True),
        ("sms", "voicemail", False),
        ("letter", "returned", True),
        ("home_visit", "not_home", True),
        ("fax", "sent", False),
    ],
)
def test_outcomes_belong_to_their_channel(channel, outcome, ok):
    assert (check_outcome(channel, outcome) is None) is ok


def test_the_natural_key_is_the_utc_second_whatever_the_offset_and_fraction():
    shanghai = timezone(timedelta(hours=8))
    a = datetime(2026, 11, 24, 10, 0, 5, 900_000, tzinfo=shanghai)
    b = datetime(2026, 11, 24, 2, 0, 5, tzinfo=UTC)
    key = natural_key(7, "phone_call", "outbound", a, agent_key(None, " Seat-7 "))
    assert key == natural_key(7, "phone_call", "outbound", b, agent_key(None, "seat-7"))
    assert key == "7|phone_call|outbound|2026-11-24T02:00:05Z|ext:seat-7"
    assert key != natural_key(7, "phone_call", "outbound", b + timedelta(seconds=1), "ext:seat-7")
    assert agent_key(3, "ignored") == "user:3"


AT = "2026-11-24T02:00:00Z"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "letter", "occurred_at": AT, "outcome": "sent"}, "channel"),
        ({"channel": "sms", "occurred_at": AT, "outcome": "busy"}, "outcome"),
        ({"channel": "sms", "occurred_at": AT[:-1], "outcome": "sent"}, "occurred_at"),
        ({"channel": "sms", "direction": "up", "occurred_at": AT, "outcome": "sent"}, "direction"),
    ],
)
def test_a_contact_body_the_engine_cannot_read_names_the_field(body, field):
    with pytest.raises(MalformedRecord) as caught:
        parse_contact(body)
    assert caught.value.field == f"body.{field}"


def _facts(**overrides) -> LadderFacts:
    values = {
        "time_zone": "Asia/Shanghai",
        "contact_start": time(8, 0),
        "contact_end": time(21, 0),
        "visit_start": time(8, 0),
        "visit_end": time(21, 0),
        "takes_visits": True,
        "legal": False,
        "closed": False,
        "blocked_channels": frozenset(),
    }
    values.update(overrides)
    return LadderFacts(**values)


def _contact(channel: str, days_ago: float, outcome: str = "sent") -> LoggedContact:
    return LoggedContact(channel, "outbound", NOW - timedelta(days=days_ago), outcome)


@pytest.mark.parametrize(
    ("log", "facts", "current", "action"),
    [
        ([], _facts(), None, ("notice", "letter", "next_rung")),
        ([_contact("letter", 5)], _facts(), "notice", ("phone", "phone_call", "next_rung")),
        (
            [_contact("letter", 5)],
            _facts(blocked_channels=frozenset({"phone"})),
            "notice",
            ("message", "sms", "next_rung"),
        ),
        (
            [_contact("sms", 1)],
            _facts(),
            "message",
            ("notice", "letter", "notice_before_visit"),
        ),
        (
            [_contact("notice", 4), _contact("sms", 1)],
            _facts(),
            "message",
            ("home_visit", "home_visit", "next_rung"),
        ),
        (
            [_contact("notice", 4), _contact("sms", 1)],
            _facts(takes_visits=False),
            "message",
            ("legal", "legal_letter", "next_rung"),
        ),
        (
            [_contact("sms", 1)],
            _facts(blocked_channels=frozenset({"letter"}), takes_visits=True),
            "message",
            (None, None, "no_lawful_channel"),
        ),
        ([_contact("sms", 1)], _facts(legal=True), "legal", (None, None, "in_legal")),
        ([], _facts(closed=True), None, (None, None, "case_closed")),
    ],
)
def test_the_next_lawful_action(log, facts, current, action):
    ladder = climb(log, facts, NOW)
    assert ladder.current_rung == current
    next_action = ladder.next_action
    assert (next_action.rung, next_action.channel, next_action.reason) == action


def test_the_current_rung_counts_from_its_first_contact():
    log = [_contact("letter", 9), _contact("phone_call", 3, "no_answer")]
    log.append(_contact("phone_call", 1, "reached"))
    ladder = climb(log, _facts(), NOW)
    assert ladder.current_rung == "phone" and ladder.on_rung_since == NOW - timedelta(days=3)
    phone = ladder.rungs[1]
    assert (phone.contacts, phone.last_outcome) == (2, "reached")
    assert dict(phone.outcomes) == {"no_answer": 1, "reached": 1}


def test_a_call_outside_contact_hours_waits_for_the_next_opening():
    late = NOW + timedelta(hours=12)  # 22:00 in Shanghai
    ladder = climb([_contact("letter", 2)], _facts(), late)
    assert ladder.next_action.earliest_at == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    early = NOW - timedelta(hours=3)  # 07:00 in Shanghai
    ladder = climb([_contact("letter", 2)], _facts(), early)
    assert ladder.next_action.earliest_at == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
