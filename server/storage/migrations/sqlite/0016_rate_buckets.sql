-- Rate-limit token buckets shared by several app servers. A SQLite store serves one machine
-- and keeps its buckets in each worker's memory (server/api/limits.py); the table exists so
-- both engines have one schema.
CREATE TABLE rate_buckets (
    key TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated_at REAL NOT NULL,
    allowed INTEGER NOT NULL
);
