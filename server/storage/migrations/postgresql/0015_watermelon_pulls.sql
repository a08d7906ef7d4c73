-- The WatermelonDB front door (docs/watermelondb.md): where each pull a phone was answered
-- left it. The `timestamp` the app keeps as `lastPulledAt` is `stamp`; presented again it
-- resumes from `cursor` (the native signed cursor) and `rejection_seq` (the last refused
-- record answered), and proves the phone applied that pull, purges included (`purges`:
-- JSON [[visit_id, purge_ordered_at], ...] sent as deleted rows). Rows are ids, positions
-- and times, no borrower fact; each device keeps those of the last
-- DOORSTEP_WATERMELON_STAMP_TTL_S seconds and always its latest.
CREATE TABLE watermelon_pulls (
    device_id TEXT NOT NULL REFERENCES devices(id),
    stamp BIGINT NOT NULL,
    cursor TEXT NOT NULL,
    rejection_seq BIGINT NOT NULL,
    purges TEXT NOT NULL,
    pulled_at TEXT NOT NULL,
    PRIMARY KEY (device_id, stamp)
);
