"""When a borrower card may be on a phone, and what a pull adds, updates and purges.

Every rule about a card's life on a device lives here, as pure functions over values:

- A card may be held only while its visit is assigned to the agent, not cancelled, its case
  still takes visits, and `visible_from <= now < expires_at`: from the start of the visit's
  day in the borrower's time zone (less the lead time) to the end of that day plus the grace
  period. A completed, attempted or missed visit keeps its card to the end of that window:
  the agent may still have to go back that day, or sign a promise just made.
- A case stops taking visits (`case_stops_visits`) when it is closed, marked do-not-visit,
  deceased or under legal hold, or disputed when the compliance policy says so. The server
  then orders every card of the case purged at once, on every device that holds one.
- A held card that may no longer be held is ordered purged, with the reason `cancelled`,
  `reassigned`, `expired` or `case_closed` (the case stopped taking visits; the reason does
  not say why, which would tell the agent a borrower fact its card may not carry). The order
  is repeated on every pull until the device confirms it.
- A delivery counts only once the device comes back with the cursor of the pull that carried
  it, so a lost response is answered again, identically, when the same cursor is presented.
- A device that leaves a purge order unconfirmed past the deadline gets no new cards until
  it confirms (it still receives purge orders and record outcomes).
- The phone drops a card at its `expires_at` even if it never syncs again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from .cases import CLOSED_STATUSES, DECEASED, DISPUTE, DO_NOT_VISIT, LEGAL_HOLD

CANCELLED = "cancelled"
REASSIGNED = "reassigned"
EXPIRED = "expired"
CASE_CLOSED = "case_closed"
PURGE_REASONS = (CANCELLED, REASSIGNED, EXPIRED, CASE_CLOSED)
# Flags that end a case's visits; a dispute does when the policy says so.
_STOPPING_FLAGS = (DO_NOT_VISIT, DECEASED, LEGAL_HOLD)


@dataclass(frozen=True)
class CardPolicy:
    """The card settings: lead before the visit's day, grace after it, purge-ack deadline."""

    lead: timedelta = timedelta(0)
    grace: timedelta = timedelta(hours=6)
    purge_ack_deadline: timedelta = timedelta(hours=2)


@dataclass(frozen=True)
class CardWindow:
    """When an agent may hold the card of one visit."""

    visible_from: datetime
    expires_at: datetime

    def contains(self, now: datetime) -> bool:
        """True while the card may be held."""
        return self.visible_from <= now < self.expires_at


@dataclass(frozen=True)
class CardVisit:
    """What the card rules need to know about a visit."""

    visit_id: int
    agent_id: int | None
    status: str
    visit_date: date
    time_zone: str
    case_closed: bool = False  # the visit's case stopped taking visits (case_stops_visits)


@dataclass(frozen=True)
class HeldCard:
    """A card the server delivered to a device and whose purge the device has not confirmed."""

    visit_id: int
    card_digest: str
    delivered_pull: int
    purge_reason: str | None = None
    purge_ordered_at: datetime | None = None


@dataclass(frozen=True)
class PurgeOrder:
    visit_id: int
    reason: str
    ordered_at: datetime


@dataclass(frozen=True)
class PullPlan:
    """What one pull does: order purges, send a page of cards, or refuse cards altogether."""

    new_purges: Mapping[int, str]  # visit id -> reason, ordered by this pull
    purges: tuple[PurgeOrder, ...]  # every open purge order after this pull, by visit id
    send: tuple[int, ...]  # visit ids whose cards this page carries, in the order wanted
    more_cards: bool  # cards are left for the next page
    blocked: tuple[int, ...]  # overdue purge orders: no cards until they are confirmed


def case_stops_visits(
    status: str, flags: Collection[str], *, dispute_stops_visits: bool
) -> tuple[str, ...]:
    """Why a case takes no more visits, and its cards must leave every phone: its closed
    status, and each of do_not_visit, deceased, legal_hold and (when the policy says so)
    dispute that is set. Empty while it may be visited."""
    reasons = [status] if status in CLOSED_STATUSES else []
    reasons += [flag for flag in _STOPPING_FLAGS if flag in flags]
    if dispute_stops_visits and DISPUTE in flags:
        reasons.append(DISPUTE)
    return tuple(reasons)


# A pull asks for the windows of the same few days in the same few zones over and over;
# a window is a pure function of its three (hashable) arguments, so each is computed once.
@lru_cache(maxsize=4096)
def card_window(visit_date: date, time_zone: str, policy: CardPolicy) -> CardWindow:
    """From the start of the visit's day (less the lead) to its end plus the grace period,
    in the borrower's time zone."""
    zone = ZoneInfo(time_zone)
    start = datetime.combine(visit_date, time.min, zone)
    end = datetime.combine(visit_date + timedelta(days=1), time.min, zone)
    return CardWindow(visible_from=start - policy.lead, expires_at=end + policy.grace)


def may_hold(
    visit: CardVisit, agent_id: int, now: datetime, policy: CardPolicy
) -> CardWindow | None:
    """The card's window if this agent may hold this visit's card now, else None."""
    if visit.agent_id != agent_id or visit.status == CANCELLED or visit.case_closed:
        return None
    window = card_window(visit.visit_date, visit.time_zone, policy)
    return window if window.contains(now) else None


def purge_reason(visit: CardVisit | None, agent_id: int) -> str:
    """Why a held card must go: its case stopped taking visits, the visit was cancelled or
    moved to someone else, or its time ran out (also when the visit no longer exists)."""
    if visit is None:
        return EXPIRED
    if visit.case_closed:
        return CASE_CLOSED
    if visit.status == CANCELLED:
        return CANCELLED
    if visit.agent_id != agent_id:
        return REASSIGNED
    return EXPIRED


def is_expired(expires_at: datetime | None, now: datetime) -> bool:
    """The phone's own check: a card past its expires_at is dropped, online or not."""
    return expires_at is not None and now >= expires_at


def overdue_purges(held: Iterable[HeldCard], now: datetime, policy: CardPolicy) -> list[int]:
    """Visit ids whose purge order has gone unconfirmed past the deadline."""
    cutoff = now - policy.purge_ack_deadline
    return sorted(
        card.visit_id
        for card in held
        if card.purge_ordered_at is not None and card.purge_ordered_at < cutoff
    )


def plan_pull(
    desired: Sequence[tuple[int, str]],
    held: Mapping[int, HeldCard],
    current: Mapping[int, CardVisit],
    agent_id: int,
    delivered_through: int,
    now: datetime,
    policy: CardPolicy,
    limit: int,
) -> PullPlan:
    """Plan one pull.

    `desired`: (visit id, card digest) of every card the agent may hold now, in the order
    they should be sent. `held`: the device's unconfirmed cards. `current`: the visits of
    held cards that are not desired, as they are now (absent: the visit is gone).
    `delivered_through`: the pull sequence number of the cursor the device presented; a
    card delivered by a later pull was never seen by the device.
    """
    wanted_ids = {visit_id for visit_id, _ in desired}
    new_purges = {
        visit_id: purge_reason(current.get(visit_id), agent_id)
        for visit_id, card in held.items()
        if visit_id not in wanted_ids and card.purge_reason is None
    }
    blocked = tuple(overdue_purges(held.values(), now, policy))
    wanted = [
        visit_id
        for visit_id, digest in desired
        if not _already_delivered(held.get(visit_id), digest, delivered_through)
    ]
    send = () if blocked else tuple(wanted[:limit])
    sent = set(send)
    orders = {
        visit_id: PurgeOrder(visit_id, card.purge_reason, card.purge_ordered_at)
        for visit_id, card in held.items()
        if card.purge_reason is not None and card.purge_ordered_at is not None
    }
    orders.update({v: PurgeOrder(v, reason, now) for v, reason in new_purges.items()})
    return PullPlan(
        new_purges=new_purges,
        # Delivering a card again clears its purge order.
        purges=tuple(orders[v] for v in sorted(orders) if v not in sent),
        send=send,
        more_cards=not blocked and len(wanted) > limit,
        blocked=blocked,
    )


def _already_delivered(card: HeldCard | None, digest: str, delivered_through: int) -> bool:
    return (
        card is not None
        and card.delivered_pull <= delivered_through
        and card.purge_ordered_at is None
        and card.card_digest == digest
    )
