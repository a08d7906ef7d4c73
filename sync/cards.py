"""When a borrower card may be on a phone, and what a pull adds, updates and purges.

Every rule about a card's life on a device lives here, as pure functions over values:

- A card may be held only while its visit is assigned to the agent, not cancelled, and
  `visible_from <= now < expires_at`: from the start of the visit's day in the borrower's
  time zone (less the lead time) to the end of that day plus the grace period.
- A held card that may no longer be held is ordered purged, with the reason `cancelled`,
  `reassigned` or `expired`. The order is repeated on every pull until the device confirms it.
- A delivery counts only once the device comes back with the cursor of the pull that carried
  it, so a lost response is answered again, identically, when the same cursor is presented.
- A device that leaves a purge order unconfirmed past the deadline gets no new cards until
  it confirms (it still receives purge orders and record outcomes).
- The phone drops a card at its `expires_at` even if it never syncs again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

CANCELLED = "cancelled"
REASSIGNED = "reassigned"
EXPIRED = "expired"
PURGE_REASONS = (CANCELLED, REASSIGNED, EXPIRED)


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
    if visit.agent_id != agent_id or visit.status == CANCELLED:
        return None
    window = card_window(visit.visit_date, visit.time_zone, policy)
    return window if window.contains(now) else None


def purge_reason(visit: CardVisit | None, agent_id: int) -> str:
    """Why a held card must go: the visit was cancelled, moved to someone else, or its time
    ran out (also when the visit no longer exists)."""
    if visit is None:
        return EXPIRED
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
