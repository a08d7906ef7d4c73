"""Rate limits shared by every app server on a PostgreSQL store."""

from __future__ import annotations

import math
from datetime import datetime

import sqlite_utils

from server.errors import RateLimited
from server.storage import rate_limits as bucket_rows


def take(db: sqlite_utils.Database, key: str, rate_per_s: float, burst: int, now: datetime) -> None:
    """Spend a token of `key`'s shared bucket, or raise RateLimited with the wait until the
    next one. One statement in its own transaction: it never waits for the write lock."""
    left = bucket_rows.take(db, key, rate_per_s, burst, now.timestamp())
    if left is not None:
        wait = math.ceil((1.0 - left) / rate_per_s)
        raise RateLimited("too many requests; slow down", retry_after=max(1, wait))
