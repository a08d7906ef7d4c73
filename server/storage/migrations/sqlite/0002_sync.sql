-- Field records pushed by phones, refusals, agreement receipts, the cards each device holds,
-- per-device sync state and content-addressed blobs.

-- Field records as the server stored them: facts, never edited or removed by the API.
CREATE TABLE sync_records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    agent_id INTEGER NOT NULL REFERENCES users(id),
    device_id TEXT NOT NULL,
    visit_id INTEGER NOT NULL,
    case_id INTEGER NOT NULL,
    device_seq INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    digest TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX sync_records_device ON sync_records(device_id, seq);
CREATE INDEX sync_records_visit ON sync_records(visit_id);
CREATE INDEX sync_records_case ON sync_records(case_id, kind);

-- Permanent refusals, once per (record id, content), for sync health and support.
CREATE TABLE sync_rejections (
    id INTEGER PRIMARY KEY,
    record_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    agent_id INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    received_at TEXT NOT NULL,
    UNIQUE (record_id, digest)
);
CREATE INDEX sync_rejections_device ON sync_rejections(device_id);

CREATE TABLE agreement_receipts (
    agreement_id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    received_at TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);

-- Which borrower cards each device holds, and the purge orders it has (not) confirmed.
CREATE TABLE device_cards (
    device_id TEXT NOT NULL REFERENCES devices(id),
    visit_id INTEGER NOT NULL REFERENCES visits(id),
    borrower_id INTEGER NOT NULL,
    case_id INTEGER NOT NULL,
    card_digest TEXT NOT NULL,
    delivered_pull INTEGER NOT NULL,
    delivered_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    purge_reason TEXT,
    purge_ordered_at TEXT,
    purge_confirmed_at TEXT,
    PRIMARY KEY (device_id, visit_id)
);
CREATE INDEX device_cards_unconfirmed ON device_cards(device_id, purge_confirmed_at);

CREATE TABLE device_sync (
    device_id TEXT PRIMARY KEY REFERENCES devices(id),
    pull_count INTEGER NOT NULL DEFAULT 0,
    last_pull_at TEXT,
    last_push_at TEXT,
    clock_skew_s REAL,
    queued_count INTEGER,
    oldest_queued_at TEXT,
    reported_at TEXT
);

-- Content-addressed blobs (signatures, photos) and resumable uploads of large ones.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    data BLOB NOT NULL,
    created_at TEXT NOT NULL,
    uploaded_by INTEGER REFERENCES users(id)
);
CREATE TABLE blob_uploads (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    received INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id),
    device_id TEXT
);
CREATE INDEX blob_uploads_sha ON blob_uploads(sha256);
CREATE TABLE blob_chunks (
    upload_id TEXT NOT NULL REFERENCES blob_uploads(id) ON DELETE CASCADE,
    offset INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (upload_id, offset)
);

CREATE TRIGGER sync_records_no_update BEFORE UPDATE ON sync_records
BEGIN SELECT RAISE(ABORT, 'sync_records is append-only'); END;
CREATE TRIGGER sync_records_no_delete BEFORE DELETE ON sync_records
BEGIN SELECT RAISE(ABORT, 'sync_records is append-only'); END;

CREATE TRIGGER agreement_receipts_no_update BEFORE UPDATE ON agreement_receipts
BEGIN SELECT RAISE(ABORT, 'agreement_receipts is append-only'); END;
CREATE TRIGGER agreement_receipts_no_delete BEFORE DELETE ON agreement_receipts
BEGIN SELECT RAISE(ABORT, 'agreement_receipts is append-only'); END;
