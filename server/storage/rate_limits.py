"""Token buckets shared by every app server (PostgreSQL): one row per key, one statement
per request, outside the write lock (docs/deployment.md, "Rate limits")."""

from __future__ import annotations

import sqlite_utils

# Refill since the last request, capped at the burst; take one token only if one is there.
# `allowed` says whether this request took one; `tokens` is what is left.
_TAKE = (
    "INSERT INTO rate_buckets (key, tokens, updated_at, allowed) "
    "VALUES (:key, :burst - 1, :now, 1) "
    "ON CONFLICT (key) DO UPDATE SET "
    "tokens = CASE WHEN least(:burst, rate_buckets.tokens + greatest(0, :now - "
    "rate_buckets.updated_at) * :rate) >= 1 THEN least(:burst, rate_buckets.tokens + "
    "greatest(0, :now - rate_buckets.updated_at) * :rate) - 1 ELSE least(:burst, "
    "rate_buckets.tokens + greatest(0, :now - rate_buckets.updated_at) * :rate) END, "
    "allowed = CASE WHEN least(:burst, rate_buckets.tokens + greatest(0, :now - "
    "rate_buckets.updated_at) * :rate) >= 1 THEN 1 ELSE 0 END, "
    "updated_at = greatest(rate_buckets.updated_at, :now) "
    "RETURNING allowed, tokens"
)


def take(
    db: sqlite_utils.Database, key: str, rate_per_s: float, burst: int, now_s: float
) -> float | None:
    """Spend a token of `key`'s bucket: None if taken, else the tokens left (below one)."""
    allowed, tokens = db.execute(
        _TAKE, {"key": key, "burst": float(burst), "now": now_s, "rate": rate_per_s}
    ).fetchone()
    return None if allowed else float(tokens)


def forget_idle(db: sqlite_utils.Database, before_s: float) -> int:
    """Remove buckets untouched since `before_s` (they would be full again anyway)."""
    return db.execute("DELETE FROM rate_buckets WHERE updated_at < ?", [before_s]).rowcount
