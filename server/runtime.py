"""What every use case needs besides the database: settings, clock, keys, policies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from server.auth.passwords import Passwords
from server.clock import Clock
from server.domain.disclosure import DisclosurePolicy
from server.domain.login_throttle import ThrottlePolicy
from server.keys import SigningKeys
from sync.cards import CardPolicy
from sync.compliance import CompliancePolicy


@dataclass(frozen=True)
class Runtime:
    settings: Mapping[str, Any]
    clock: Clock
    keys: SigningKeys
    disclosure: DisclosurePolicy
    passwords: Passwords
    compliance: CompliancePolicy
    cursor_key: bytes

    @cached_property
    def cards(self) -> CardPolicy:
        """How long cards live on phones and how long a purge may go unconfirmed (built once:
        the settings do not change in a process, and card_window caches by this value)."""
        return CardPolicy(
            lead=timedelta(seconds=self.settings["CARD_LEAD_TIME_S"]),
            grace=timedelta(seconds=self.settings["CARD_GRACE_S"]),
            purge_ack_deadline=timedelta(seconds=self.settings["PURGE_ACK_DEADLINE_S"]),
        )

    @property
    def login_throttle(self) -> ThrottlePolicy:
        """How failed logins slow further attempts (server/domain/login_throttle.py)."""
        return ThrottlePolicy(
            failures_before_delay=self.settings["LOGIN_FAILURES_BEFORE_DELAY"],
            delay_max=timedelta(seconds=self.settings["LOGIN_DELAY_MAX_S"]),
            window=timedelta(seconds=self.settings["LOGIN_FAILURE_WINDOW_S"]),
            max_per_user=self.settings["LOGIN_MAX_FAILURES_PER_USER"],
            max_per_address=self.settings["LOGIN_MAX_FAILURES_PER_ADDRESS"],
        )


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    user_id: int
    username: str
    role: str
    device_id: str | None
    time_zone: str | None = None


@dataclass(frozen=True)
class Caller:
    """Who is asking, through which request, at what time."""

    principal: Principal | None
    request_id: str
    endpoint: str
    address: str
    now: datetime
