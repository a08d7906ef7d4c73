"""The login throttling rule, values in and out (server/domain/login_throttle.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.domain.login_throttle import (
    PairFailures,
    ThrottlePolicy,
    current_streak,
    login_wait,
    pair_delay,
)

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
POLICY = ThrottlePolicy(
    failures_before_delay=5,
    delay_max=timedelta(minutes=15),
    window=timedelta(hours=1),
    max_per_user=50,
    max_per_address=100,
)


def ago(**kwargs: float) -> datetime:
    return NOW - timedelta(**kwargs)


@pytest.mark.parametrize(
    ("streak", "seconds"),
    [(0, 0), (4, 0), (5, 1), (6, 2), (9, 16), (14, 512), (15, 900), (500, 900)],
)
def test_a_pair_waits_double_after_each_failure_up_to_the_cap(streak, seconds):
    assert pair_delay(POLICY, streak) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("pair", "user_oldest", "address_oldest", "wait"),
    [
        # A pair with no recent failure is heard whatever happens elsewhere.
        (PairFailures(), ago(minutes=1), ago(minutes=1), None),
        (PairFailures(9, ago(hours=1)), ago(minutes=1), ago(minutes=1), None),
        # Under its free failures, and no cap reached: heard.
        (PairFailures(4, ago(seconds=1)), None, None, None),
        # Its own back-off: 5 failures, the last 0.5 s ago, means 1 s.
        (PairFailures(5, ago(seconds=0.5)), None, None, 1),
        (PairFailures(7, ago(seconds=1)), None, None, 3),
        (PairFailures(7, ago(seconds=5)), None, None, None),
        # A cap holds back a pair that failed, until its oldest counted failure leaves.
        (PairFailures(1, ago(seconds=10)), ago(minutes=50), None, 600),
        (PairFailures(1, ago(seconds=10)), None, ago(minutes=59), 60),
        # The longest of the waits wins.
        (PairFailures(20, ago(seconds=10)), ago(minutes=59), None, 890),
    ],
)
def test_login_wait(pair, user_oldest, address_oldest, wait):
    assert login_wait(POLICY, pair, user_oldest, address_oldest, NOW) == wait


def test_a_quiet_window_forgets_a_pairs_failures():
    assert current_streak(POLICY, PairFailures(30, ago(minutes=59)), NOW) == 30
    assert current_streak(POLICY, PairFailures(30, ago(minutes=60)), NOW) == 0
