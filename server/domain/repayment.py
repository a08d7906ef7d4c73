"""Promises and agreement instalments tracked against payments: pure rules, no I/O.

A case owes *obligations*: each promise to pay (whatever recorded it) and each instalment of
the case's agreement in force. Payments are allocated oldest-due-first, and each obligation's
state follows from the allocation and the day it is judged on (docs/promises.md):

- `kept`: its amount was covered by payments made by its deadline (due date + grace days);
- `pending`: not covered yet, and its deadline has not passed;
- `partly_kept`: its deadline passed with part of the amount paid in time;
- `broken`: its deadline passed with nothing paid in time.

A payment after the deadline still reduces what is due (`amount_due`) but does not change
a broken promise into a kept one: the promise was about a date.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from sync.cases import CLOSED_STATUSES, DECEASED, DISPUTE, LEGAL, LEGAL_HOLD

PROMISE = "promise"
INSTALMENT = "instalment"
ObligationKind = Literal["promise", "instalment"]

PENDING = "pending"
KEPT = "kept"
PARTLY_KEPT = "partly_kept"
BROKEN = "broken"
STATES: tuple[str, ...] = (PENDING, KEPT, PARTLY_KEPT, BROKEN)
# Due the same day and made the same day: the promise first (it is what the borrower said
# last about that day).
_KIND_ORDER = {PROMISE: 0, INSTALMENT: 1}

PHONE_CALL = "phone_call"
LETTER = "letter"
NO_ACTION = "none"
NEXT_ACTIONS: tuple[str, ...] = (PHONE_CALL, LETTER, NO_ACTION)
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Obligation:
    """Something the borrower undertook to pay by a day."""

    kind: ObligationKind
    id: str  # a promise's id, or "<agreement id>#<instalment number from 1>"
    case_id: int
    due_date: date
    amount: Decimal
    made_on: date  # payments before this day were not made towards it
    source: str  # what recorded it: visit_report, agreement, phone_call, ...
    agent_id: int | None = None
    visit_id: int | None = None


@dataclass(frozen=True)
class Payment:
    """Money the bank received for a case, on a day in the borrower's time zone."""

    id: str
    paid_on: date
    amount: Decimal


@dataclass(frozen=True)
class Allocation:
    """The part of one payment that went to one obligation."""

    payment_id: str
    paid_on: date
    amount: Decimal


@dataclass(frozen=True)
class ObligationState:
    """An obligation as judged on one day."""

    obligation: Obligation
    state: str
    deadline: date
    paid_on_time: Decimal
    paid_late: Decimal
    amount_due: Decimal
    allocations: tuple[Allocation, ...]

    @property
    def open(self) -> bool:
        """Still owed: something is due and it was not kept."""
        return self.state != KEPT and self.amount_due > 0

    @property
    def overdue(self) -> bool:
        """Its deadline passed and money is still due: a dispatcher's worklist item."""
        return self.state in (BROKEN, PARTLY_KEPT) and self.amount_due > 0


@dataclass(frozen=True)
class Tracking:
    """Every obligation of a case on one day, and the money no obligation could take."""

    states: tuple[ObligationState, ...]
    unallocated: Decimal


def allocation_order(obligation: Obligation) -> tuple:
    """Oldest due first; then the one made first, a promise before an instalment, by id."""
    return (obligation.due_date, obligation.made_on, _KIND_ORDER[obligation.kind], obligation.id)


def track(
    obligations: Iterable[Obligation],
    payments: Iterable[Payment],
    today: date,
    grace_days: int,
) -> Tracking:
    """Allocate the payments made up to `today` and judge each obligation on `today`.

    Payments are taken in the order they were paid (then by id); each goes to the open
    obligations that existed when it was paid (made on or before that day), oldest due
    first, until it is spent. What is left over is `unallocated`. The same facts and the
    same day always give the same answer.
    """
    ordered = sorted(obligations, key=allocation_order)
    remaining = {o.id: o.amount for o in ordered}
    taken: dict[str, list[Allocation]] = {o.id: [] for o in ordered}
    unallocated = ZERO
    for payment in sorted(payments, key=lambda p: (p.paid_on, p.id)):
        if payment.paid_on > today:
            continue
        left = payment.amount
        for obligation in ordered:
            if left <= 0:
                break
            if obligation.made_on > payment.paid_on or remaining[obligation.id] <= 0:
                continue
            part = min(left, remaining[obligation.id])
            remaining[obligation.id] -= part
            left -= part
            taken[obligation.id].append(Allocation(payment.id, payment.paid_on, part))
        unallocated += left
    grace = timedelta(days=grace_days)
    states = tuple(judge(o, tuple(taken[o.id]), today, o.due_date + grace) for o in ordered)
    return Tracking(states, unallocated)


def judge(
    obligation: Obligation, allocations: Sequence[Allocation], today: date, deadline: date
) -> ObligationState:
    """The state of one obligation on `today`, from the payments allocated to it."""
    on_time = sum((a.amount for a in allocations if a.paid_on <= deadline), ZERO)
    late = sum((a.amount for a in allocations if a.paid_on > deadline), ZERO)
    if on_time >= obligation.amount:
        state = KEPT
    elif today <= deadline:
        state = PENDING
    elif on_time > 0:
        state = PARTLY_KEPT
    else:
        state = BROKEN
    return ObligationState(
        obligation=obligation,
        state=state,
        deadline=deadline,
        paid_on_time=on_time,
        paid_late=late,
        amount_due=max(obligation.amount - on_time - late, ZERO),
        allocations=tuple(allocations),
    )


def most_pressing(states: Iterable[ObligationState]) -> ObligationState | None:
    """What an agent at the door should know first: the oldest overdue obligation, else
    the next one pending; None when nothing is owed."""
    open_states = [s for s in states if s.open]
    overdue = [s for s in open_states if s.overdue]
    pool = overdue or open_states
    return min(pool, key=lambda s: allocation_order(s.obligation)) if pool else None


@dataclass(frozen=True)
class ContactLimits:
    """What stops a contact with the borrower: the case's state and the borrower's asks."""

    case_stops_contact: str | None  # legal_hold, deceased, dispute, closed...; None: may
    no_contact_channels: frozenset[str]  # channels of standing do-not-contact requests
    # A do-not-contact request without a channel covers every channel.
    no_contact_at_all: bool = False


# Flags under which the bank does not chase the borrower, in the order they are reported.
_NO_CHASE_FLAGS = (LEGAL_HOLD, DECEASED, DISPUTE)


def contact_stop(status: str, flags: Iterable[str]) -> str | None:
    """Why a case takes no collection contact at all (closed, with the lawyers, on hold,
    deceased, disputed), or None."""
    if status in CLOSED_STATUSES:
        return "closed"
    if status == LEGAL:
        return LEGAL
    return next((flag for flag in _NO_CHASE_FLAGS if flag in set(flags)), None)


@dataclass(frozen=True)
class NextAction:
    """The next lawful step for an overdue obligation, and why."""

    action: str
    reason: str


def next_action(limits: ContactLimits) -> NextAction:
    """A call when the borrower may be phoned, else a letter, else nothing.

    The collections ladder (issue 11, item 1) will refine this; the rule keeps the two
    limits that already bind: the case's state and the borrower's do-not-contact requests.
    """
    if limits.case_stops_contact:
        return NextAction(NO_ACTION, f"case_{limits.case_stops_contact}")
    if limits.no_contact_at_all:
        return NextAction(NO_ACTION, "do_not_contact")
    if "phone" not in limits.no_contact_channels:
        return NextAction(PHONE_CALL, "overdue")
    if "letter" not in limits.no_contact_channels:
        return NextAction(LETTER, "do_not_contact_phone")
    return NextAction(NO_ACTION, "do_not_contact_phone_and_letter")
