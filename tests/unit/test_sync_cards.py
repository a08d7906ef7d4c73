"""When a card may be on a phone, and what a pull sends and purges (sync/cards.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from sync.cards import (
    CardPolicy,
    CardVisit,
    HeldCard,
    PurgeOrder,
    card_window,
    case_stops_visits,
    is_expired,
    may_hold,
    overdue_purges,
    plan_pull,
    purge_reason,
)

POLICY = CardPolicy(
    lead=timedelta(0), grace=timedelta(hours=6), purge_ack_deadline=timedelta(hours=2)
)
DAY = date(2026, 11, 24)
# Shanghai is UTC+8: the visit's day runs 2026-11-23 16:00Z .. 2026-11-24 16:00Z, plus 6 h.
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
AGENT, OTHER = 7, 8


def visit(
    visit_id=1, agent_id=AGENT, status="planned", day=DAY, zone="Asia/Shanghai", closed=False
):
    return CardVisit(visit_id, agent_id, status, day, zone, case_closed=closed)


def test_window_is_the_borrowers_local_day_plus_grace():
    window = card_window(DAY, "Asia/Shanghai", POLICY)
    assert window.visible_from == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    assert window.expires_at == datetime(2026, 11, 24, 22, 0, tzinfo=UTC)


def test_lead_time_opens_the_window_earlier():
    window = card_window(DAY, "UTC", CardPolicy(lead=timedelta(hours=12)))
    assert window.visible_from == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("subject", "now", "holdable"),
    [
        (visit(), NOW, True),
        (visit(agent_id=OTHER), NOW, False),
        (visit(agent_id=None), NOW, False),
        (visit(status="cancelled"), NOW, False),
        (visit(), datetime(2026, 11, 23, 15, 59, 59, tzinfo=UTC), False),  # before the day
        (visit(), datetime(2026, 11, 23, 16, 0, tzinfo=UTC), True),  # first instant
        (visit(), datetime(2026, 11, 24, 21, 59, 59, tzinfo=UTC), True),  # inside the grace
        (visit(), datetime(2026, 11, 24, 22, 0, tzinfo=UTC), False),  # expired
        (visit(day=date(2026, 11, 25)), NOW, False),  # tomorrow's visit
        # What happened at the door does not shorten the window: the agent may go back.
        (visit(status="completed"), NOW, True),
        (visit(status="attempted"), NOW, True),
        (visit(status="missed"), datetime(2026, 11, 24, 17, 0, tzinfo=UTC), True),
        (visit(status="completed", closed=True), NOW, False),  # the case stopped visits
    ],
)
def test_may_hold(subject, now, holdable):
    assert (may_hold(subject, AGENT, now, POLICY) is not None) is holdable


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        (None, "expired"),
        (visit(status="cancelled"), "cancelled"),
        (visit(status="cancelled", agent_id=OTHER), "cancelled"),
        (visit(agent_id=OTHER), "reassigned"),
        (visit(agent_id=None), "reassigned"),
        (visit(), "expired"),
        # A case that stopped taking visits says so, whatever became of the visit.
        (visit(closed=True), "case_closed"),
        (visit(status="cancelled", closed=True), "case_closed"),
        (visit(agent_id=OTHER, closed=True), "case_closed"),
    ],
)
def test_purge_reason(subject, reason):
    assert purge_reason(subject, AGENT) == reason


@pytest.mark.parametrize(
    ("status", "flags", "dispute_stops", "reasons"),
    [
        ("open", set(), True, ()),
        ("legal", set(), True, ()),
        ("open", {"hardship"}, True, ()),  # planning refuses, existing visits keep their cards
        ("closed_paid", set(), True, ("closed_paid",)),
        ("closed_settled", set(), True, ("closed_settled",)),
        ("closed_written_off", set(), True, ("closed_written_off",)),
        ("open", {"do_not_visit"}, True, ("do_not_visit",)),
        ("open", {"deceased"}, True, ("deceased",)),
        ("open", {"legal_hold"}, True, ("legal_hold",)),
        ("open", {"dispute"}, True, ("dispute",)),
        ("open", {"dispute"}, False, ()),
        (
            "closed_paid",
            {"legal_hold", "do_not_visit"},
            True,
            ("closed_paid", "do_not_visit", "legal_hold"),
        ),
    ],
)
def test_which_case_changes_end_its_visits(status, flags, dispute_stops, reasons):
    assert case_stops_visits(status, flags, dispute_stops_visits=dispute_stops) == reasons


def test_a_case_closed_after_delivery_orders_every_held_card_purged():
    result = plan(
        [], [held(1), held(2)], current={1: visit(1, closed=True), 2: visit(2, closed=True)}
    )
    assert dict(result.new_purges) == {1: "case_closed", 2: "case_closed"}
    assert [p.reason for p in result.purges] == ["case_closed", "case_closed"]


def test_a_case_closed_purge_ordered_by_the_server_is_repeated_not_resent():
    ordered = NOW - timedelta(minutes=5)
    result = plan(
        [], [held(1, reason="case_closed", ordered=ordered)], current={1: visit(1, closed=True)}
    )
    assert result.new_purges == {} and result.send == ()
    assert result.purges == (PurgeOrder(1, "case_closed", ordered),)


def test_phone_drops_cards_at_expiry():
    expires = NOW + timedelta(hours=1)
    assert not is_expired(expires, NOW)
    assert is_expired(expires, expires)
    assert not is_expired(None, NOW)


def held(visit_id, digest="d", pull=1, reason=None, ordered=None):
    return HeldCard(visit_id, digest, pull, reason, ordered)


def test_overdue_purges_after_the_deadline_only():
    cards = [
        held(1, reason="expired", ordered=NOW - timedelta(hours=2, seconds=1)),
        held(2, reason="expired", ordered=NOW - timedelta(hours=2)),
        held(3),
    ]
    assert overdue_purges(cards, NOW, POLICY) == [1]


def plan(desired, held_cards, current=None, through=1, limit=50, now=NOW):
    return plan_pull(
        desired,
        {c.visit_id: c for c in held_cards},
        current or {},
        AGENT,
        through,
        now,
        POLICY,
        limit,
    )


def test_first_pull_sends_every_desired_card():
    result = plan([(1, "a"), (2, "b")], [], through=0)
    assert result.send == (1, 2) and result.purges == () and not result.more_cards


def test_a_card_seen_by_the_device_is_not_sent_again():
    result = plan([(1, "a")], [held(1, "a", pull=1)], through=1)
    assert result.send == ()


def test_a_delivery_the_device_never_confirmed_is_sent_again():
    # Pull 2 carried the card, but the device came back with pull 1's cursor.
    result = plan([(1, "a")], [held(1, "a", pull=2)], through=1)
    assert result.send == (1,)


def test_a_changed_card_is_sent_again():
    assert plan([(1, "new")], [held(1, "old")]).send == (1,)


def test_cards_no_longer_holdable_are_ordered_purged_with_their_reason():
    result = plan(
        [],
        [held(1), held(2), held(3)],
        current={1: visit(1, status="cancelled"), 2: visit(2, agent_id=OTHER)},
    )
    assert dict(result.new_purges) == {1: "cancelled", 2: "reassigned", 3: "expired"}
    assert result.purges == (
        PurgeOrder(1, "cancelled", NOW),
        PurgeOrder(2, "reassigned", NOW),
        PurgeOrder(3, "expired", NOW),
    )


def test_an_open_purge_order_is_repeated_with_its_first_reason_and_time():
    first = NOW - timedelta(minutes=30)
    result = plan([], [held(1, reason="reassigned", ordered=first)], current={1: visit(1)})
    assert result.new_purges == {}
    assert result.purges == (PurgeOrder(1, "reassigned", first),)


def test_a_card_given_back_clears_its_purge_order():
    first = NOW - timedelta(minutes=30)
    result = plan([(1, "a")], [held(1, "a", reason="reassigned", ordered=first)])
    assert result.send == (1,) and result.purges == ()


def test_an_overdue_purge_blocks_new_cards_but_not_purge_orders():
    late = NOW - timedelta(hours=3)
    result = plan([(2, "b")], [held(1, reason="expired", ordered=late)], through=0)
    assert result.blocked == (1,)
    assert result.send == () and not result.more_cards
    assert result.purges == (PurgeOrder(1, "expired", late),)


def test_pages_are_cut_at_the_limit_in_the_order_given():
    result = plan([(3, "c"), (1, "a"), (2, "b")], [], through=0, limit=2)
    assert result.send == (3, 1) and result.more_cards
