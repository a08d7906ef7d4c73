"""Request rate limits: a token bucket in each worker process.

Two families (server/api/context.py): per authenticated phone or staff user, taken once the
token verified; per client address, for everything that brings no valid token. Buckets live
in memory, so with N gunicorn workers a client can at most reach N times the configured
rate; the limits are set with that in mind (docs/reliability.md). Login has its own, shared
throttling in the store (server/domain/login_throttle.py).

On PostgreSQL, where several app servers share one store, the buckets are rows of the store
instead (SharedRateLimiter, server/services/rate_limits.py): a client gets the configured
rate whatever node or worker answers it."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime

from server.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    updated: datetime


class RateLimiter:
    """Refill `per_minute` tokens a minute up to `burst`; a request takes one."""

    def __init__(self, per_minute: int, burst: int, max_keys: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: datetime) -> None:
        """Spend a token for `key` or raise RateLimited with the wait until the next one."""
        if self.rate <= 0:
            return
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:
                    self._buckets.clear()  # bounded memory beats perfect accounting
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            elapsed = max(0.0, (now - bucket.updated).total_seconds())
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
            if bucket.tokens < 1.0:
                wait = math.ceil((1.0 - bucket.tokens) / self.rate)
                raise RateLimited("too many requests; slow down", retry_after=max(1, wait))
            bucket.tokens -= 1.0


class SharedRateLimiter:
    """The same buckets kept in the shared store: one family ("address" or "principal")."""

    def __init__(self, family: str, per_minute: int, burst: int) -> None:
        self.family = family
        self.rate = per_minute / 60.0
        self.burst = burst

    def take(self, key: str, now: datetime) -> None:
        if self.rate <= 0:
            return
        from server.api.context import get_db
        from server.services import rate_limits

        rate_limits.take(get_db(), f"{self.family}:{key}", self.rate, self.burst, now)
