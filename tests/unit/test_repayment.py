"""Promises and instalments judged against payments: allocation, states, next action."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from server.domain.repayment import (
    BROKEN,
    INSTALMENT,
    KEPT,
    PARTLY_KEPT,
    PENDING,
    PROMISE,
    ContactLimits,
    Obligation,
    Payment,
    contact_stop,
    most_pressing,
    next_action,
    track,
)

D = date(2026, 12, 1)
GRACE = 3


def promise(pid: str, due: date, amount: str, made: date = D - timedelta(days=10)) -> Obligation:
    return Obligation(PROMISE, pid, 1, due, Decimal(amount), made, "visit_report")


def instalment(n: int, due: date, amount: str, signed: date = D - timedelta(days=30)):
    return Obligation(INSTALMENT, f"agr#{n}", 1, due, Decimal(amount), signed, "agreement")


def pay(pid: str, day: date, amount: str) -> Payment:
    return Payment(pid, day, Decimal(amount))


def states(obligations, payments, today, grace=GRACE):
    tracking = track(obligations, payments, today, grace)
    return {s.obligation.id: s for s in tracking.states}, tracking.unallocated


# One promise of 300 due D, judged on several days after a seeded sequence of payments.
@pytest.mark.parametrize(
    ("payments", "today", "state", "due", "on_time", "late"),
    [
        ([], D - timedelta(days=1), PENDING, "300.00", "0.00", "0.00"),
        ([], D + timedelta(days=GRACE), PENDING, "300.00", "0.00", "0.00"),  # last grace day
        ([], D + timedelta(days=GRACE + 1), BROKEN, "300.00", "0.00", "0.00"),
        (
            [pay("p1", D - timedelta(days=2), "300.00")],
            D - timedelta(days=1),
            KEPT,
            "0",
            "300",
            "0",
        ),
        ([pay("p1", D, "100.00")], D, PENDING, "200.00", "100.00", "0.00"),
        # partial in time, nothing more: partly kept once the grace days are over
        ([pay("p1", D, "100.00")], D + timedelta(days=10), PARTLY_KEPT, "200.00", "100", "0"),
        # two partial payments that add up in time (the second inside the grace days)
        (
            [pay("p1", D, "100.00"), pay("p2", D + timedelta(days=GRACE), "200.00")],
            D + timedelta(days=30),
            KEPT,
            "0.00",
            "300.00",
            "0.00",
        ),
        # paid in full, but late: still broken, nothing left due
        (
            [pay("p1", D + timedelta(days=5), "300.00")],
            D + timedelta(days=6),
            BROKEN,
            "0",
            "0",
            "300",
        ),
        # part in time, the rest late
        (
            [pay("p1", D, "50.00"), pay("p2", D + timedelta(days=9), "250.00")],
            D + timedelta(days=9),
            PARTLY_KEPT,
            "0.00",
            "50.00",
            "250.00",
        ),
        # a payment after the day judged on does not count yet
        (
            [pay("p1", D + timedelta(days=2), "300.00")],
            D + timedelta(days=1),
            PENDING,
            "300",
            "0",
            "0",
        ),
    ],
)
def test_a_promise_over_a_sequence_of_payments(payments, today, state, due, on_time, late):
    found, _ = states([promise("pr", D, "300.00")], payments, today)
    judged = found["pr"]
    assert judged.state == state
    assert judged.amount_due == Decimal(due)
    assert judged.paid_on_time == Decimal(on_time)
    assert judged.paid_late == Decimal(late)
    assert judged.deadline == D + timedelta(days=GRACE)


def test_payments_go_to_the_oldest_due_first_across_promises_and_instalments():
    obligations = [
        instalment(2, D + timedelta(days=31), "400.00"),
        promise("pr", D + timedelta(days=5), "100.00"),
        instalment(1, D, "400.00"),
    ]
    payments = [pay("p1", D - timedelta(days=1), "450.00"), pay("p2", D + timedelta(days=4), "50")]
    found, unallocated = states(obligations, payments, D + timedelta(days=40))
    # 450 covers instalment 1 (400) then 50 of the promise; 50 more completes the promise
    assert found["agr#1"].state == KEPT
    assert [a.amount for a in found["pr"].allocations] == [Decimal("50.00"), Decimal("50")]
    assert found["pr"].state == KEPT
    assert found["agr#2"].state == BROKEN and found["agr#2"].amount_due == Decimal("400.00")
    assert unallocated == 0


def test_a_payment_before_a_promise_was_made_is_not_taken_by_it_and_overpayment_is_kept_aside():
    made = D - timedelta(days=3)
    payments = [pay("before", made - timedelta(days=1), "300.00"), pay("after", D, "500.00")]
    found, unallocated = states([promise("pr", D, "300.00", made)], payments, D)
    assert [a.payment_id for a in found["pr"].allocations] == ["after"]
    assert found["pr"].state == KEPT
    assert unallocated == Decimal("500.00")  # 300 before the promise + 200 over it


def test_the_same_facts_in_any_order_give_the_same_answer():
    obligations = [promise("a", D, "100"), promise("b", D, "100"), instalment(1, D, "100")]
    payments = [pay("x", D, "150"), pay("y", D, "20"), pay("w", D - timedelta(days=1), "10")]
    first = track(obligations, payments, D + timedelta(days=9), GRACE)
    again = track(list(reversed(obligations)), list(reversed(payments)), D + timedelta(days=9), 3)
    assert first == again
    by_id = {s.obligation.id: s for s in first.states}
    # same due day: the older word first (the agreement, signed before the promises were
    # made), then promise a before b by id
    assert (by_id["agr#1"].state, by_id["a"].state, by_id["b"].state) == (
        KEPT,
        PARTLY_KEPT,
        BROKEN,
    )
    assert by_id["a"].paid_on_time == Decimal("80")


def test_grace_days_are_a_setting():
    payments = [pay("p", D + timedelta(days=2), "300.00")]
    assert (
        states([promise("pr", D, "300")], payments, D + timedelta(days=9), grace=3)[0]["pr"].state
        == KEPT
    )
    assert (
        states([promise("pr", D, "300")], payments, D + timedelta(days=9), grace=0)[0]["pr"].state
        == BROKEN
    )


def test_most_pressing_is_the_oldest_overdue_then_the_next_pending_then_none():
    obligations = [promise("old", D, "100"), instalment(1, D + timedelta(days=30), "200")]
    tracking = track(obligations, [], D + timedelta(days=10), GRACE)
    assert most_pressing(tracking.states).obligation.id == "old"
    tracking = track(obligations, [pay("p", D, "100")], D + timedelta(days=10), GRACE)
    assert most_pressing(tracking.states).obligation.id == "agr#1"
    tracking = track(obligations, [pay("p", D, "300")], D + timedelta(days=10), GRACE)
    assert most_pressing(tracking.states) is None


@pytest.mark.parametrize(
    ("limits", "action", "reason"),
    [
        (ContactLimits(None, frozenset()), "phone_call", "overdue"),
        (ContactLimits(None, frozenset({"sms"})), "phone_call", "overdue"),
        (ContactLimits(None, frozenset({"phone"})), "letter", "do_not_contact_phone"),
        (
            ContactLimits(None, frozenset({"phone", "letter"})),
            "none",
            "do_not_contact_phone_and_letter",
        ),
        (ContactLimits(None, frozenset(), no_contact_at_all=True), "none", "do_not_contact"),
        (ContactLimits("legal_hold", frozenset()), "none", "case_legal_hold"),
    ],
)
def test_next_lawful_action(limits, action, reason):
    assert next_action(limits) == (type(next_action(limits))(action, reason))


@pytest.mark.parametrize(
    ("status", "flags", "stop"),
    [
        ("open", set(), None),
        ("open", {"do_not_visit", "hardship"}, None),  # letters and calls stay lawful
        ("open", {"dispute"}, "dispute"),
        ("open", {"deceased", "legal_hold"}, "legal_hold"),
        ("legal", set(), "legal"),
        ("closed_paid", set(), "closed"),
    ],
)
def test_which_cases_take_no_collection_contact(status, flags, stop):
    assert contact_stop(status, flags) == stop
