"""When a login attempt must wait before its password is even checked (docs/security.md).

Failures are counted per (username, address) pair. A pair that keeps failing waits longer
after each failure (1 s, 2 s, 4 s, … up to a cap), so guessing from one place is slow. Two
wider caps, per username across addresses and per address across usernames, slow guessing
spread over many addresses or many accounts, but they only ever hold back pairs that have
failed themselves: a pair with no recent failure is always let through, so nobody can lock
the rightful user out by failing on their behalf from somewhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ThrottlePolicy:
    failures_before_delay: int  # a pair's failures answered at once before it has to wait
    delay_max: timedelta  # the longest a pair waits after one failure
    window: timedelta  # the caps count failures this recent; a pair this quiet starts over
    max_per_user: int  # failures for one username, any address, within the window
    max_per_address: int  # failures from one address, any username, within the window


@dataclass(frozen=True)
class PairFailures:
    """A (username, address) pair's failures in a row, and when the last one happened."""

    failures: int = 0
    last_failed_at: datetime | None = None


def current_streak(policy: ThrottlePolicy, pair: PairFailures, now: datetime) -> int:
    """The pair's failures that still count: none once it has been quiet for a window."""
    if pair.last_failed_at is None or now - pair.last_failed_at >= policy.window:
        return 0
    return pair.failures


def pair_delay(policy: ThrottlePolicy, streak: int) -> timedelta:
    """How long a pair waits after its latest failure: doubling from 1 s, capped."""
    excess = streak - policy.failures_before_delay
    if excess < 0:
        return timedelta(0)
    if excess >= 40:  # 2**40 s is beyond any sane cap, and stays within timedelta's range
        return policy.delay_max
    return min(timedelta(seconds=2**excess), policy.delay_max)


def login_wait(
    policy: ThrottlePolicy,
    pair: PairFailures,
    user_cap_oldest: datetime | None,
    address_cap_oldest: datetime | None,
    now: datetime,
) -> int | None:
    """Seconds this attempt must wait, or None to check the password now.

    `user_cap_oldest` / `address_cap_oldest` are the oldest of the last `max_per_user` /
    `max_per_address` failures within the window, or None while fewer have happened.
    """
    streak = current_streak(policy, pair, now)
    if streak == 0:
        return None  # failures elsewhere never block a pair that has not failed itself
    until: list[datetime] = []
    if pair.last_failed_at is not None:
        until.append(pair.last_failed_at + pair_delay(policy, streak))
    for oldest in (user_cap_oldest, address_cap_oldest):
        if oldest is not None:
            until.append(oldest + policy.window)  # free again once it leaves the window
    wait = max((moment - now).total_seconds() for moment in until) if until else 0.0
    return max(1, math.ceil(wait)) if wait > 0 else None
