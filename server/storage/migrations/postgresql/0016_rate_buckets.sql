-- Rate-limit token buckets shared by every app server (server/storage/rate_limits.py).
-- UNLOGGED: no WAL, not replicated; after a crash of the primary the buckets start full,
-- which only forgives a burst.
CREATE UNLOGGED TABLE rate_buckets (
    key TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    allowed BIGINT NOT NULL
);
