-- index agent_feed_agent on agent_feed
CREATE INDEX agent_feed_agent ON agent_feed(agent_id, seq);

-- index blob_uploads_sha on blob_uploads
CREATE INDEX blob_uploads_sha ON blob_uploads(sha256);

-- index cases_borrower on cases
CREATE INDEX cases_borrower ON cases(borrower_id);

-- index device_cards_unconfirmed on device_cards
CREATE INDEX device_cards_unconfirmed ON device_cards(device_id, purge_confirmed_at);

-- index devices_user on devices
CREATE INDEX devices_user ON devices(user_id);

-- index exposure_ledger_borrower on exposure_ledger
CREATE INDEX exposure_ledger_borrower ON exposure_ledger(borrower_id, occurred_at);

-- index exposure_ledger_device on exposure_ledger
CREATE INDEX exposure_ledger_device ON exposure_ledger(device_id, occurred_at);

-- index exposure_ledger_time on exposure_ledger
CREATE INDEX exposure_ledger_time ON exposure_ledger(occurred_at);

-- index exposure_ledger_user on exposure_ledger
CREATE INDEX exposure_ledger_user ON exposure_ledger(user_id, occurred_at);

-- index login_failures_address on login_failures
CREATE INDEX login_failures_address ON login_failures(address, failed_at);

-- index login_failures_user on login_failures
CREATE INDEX login_failures_user ON login_failures(username, failed_at);

-- index refresh_tokens_family on refresh_tokens
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

-- index sqlite_autoindex_agents_1 on agents
(created by SQLite);

-- index sqlite_autoindex_agreement_receipts_1 on agreement_receipts
(created by SQLite);

-- index sqlite_autoindex_blob_chunks_1 on blob_chunks
(created by SQLite);

-- index sqlite_autoindex_blob_uploads_1 on blob_uploads
(created by SQLite);

-- index sqlite_autoindex_blobs_1 on blobs
(created by SQLite);

-- index sqlite_autoindex_borrowers_1 on borrowers
(created by SQLite);

-- index sqlite_autoindex_cases_1 on cases
(created by SQLite);

-- index sqlite_autoindex_device_cards_1 on device_cards
(created by SQLite);

-- index sqlite_autoindex_device_sync_1 on device_sync
(created by SQLite);

-- index sqlite_autoindex_devices_1 on devices
(created by SQLite);

-- index sqlite_autoindex_refresh_tokens_1 on refresh_tokens
(created by SQLite);

-- index sqlite_autoindex_retention_gate_1 on retention_gate
(created by SQLite);

-- index sqlite_autoindex_sync_records_1 on sync_records
(created by SQLite);

-- index sqlite_autoindex_sync_rejections_1 on sync_rejections
(created by SQLite);

-- index sqlite_autoindex_users_1 on users
(created by SQLite);

-- index sqlite_autoindex_visit_history_1 on visit_history
(created by SQLite);

-- index staff_audit_action on staff_audit
CREATE INDEX staff_audit_action ON staff_audit(action, occurred_at);

-- index staff_audit_time on staff_audit
CREATE INDEX staff_audit_time ON staff_audit(occurred_at);

-- index sync_records_case on sync_records
CREATE INDEX sync_records_case ON sync_records(case_id, kind);

-- index sync_records_device on sync_records
CREATE INDEX sync_records_device ON sync_records(device_id, seq);

-- index sync_records_visit on sync_records
CREATE INDEX sync_records_visit ON sync_records(visit_id);

-- index sync_rejections_device on sync_rejections
CREATE INDEX sync_rejections_device ON sync_rejections(device_id);

-- index visits_agent_date on visits
CREATE INDEX visits_agent_date ON visits(agent_id, visit_date, route_order);

-- index visits_case_date on visits
CREATE INDEX visits_case_date ON visits(case_id, visit_date);

-- index visits_date on visits
CREATE INDEX visits_date ON visits(visit_date);

-- table agent_feed on agent_feed
CREATE TABLE agent_feed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id INTEGER NOT NULL REFERENCES users(id),
    visit_id INTEGER NOT NULL REFERENCES visits(id),
    kind TEXT NOT NULL CHECK (kind IN ('upsert', 'purge')),
    reason TEXT,
    created_at TEXT NOT NULL
);

-- table agents on agents
CREATE TABLE agents (
    user_id INTEGER PRIMARY KEY REFERENCES users(id),
    badge_number TEXT NOT NULL UNIQUE,
    region TEXT,
    home_lat REAL,
    home_lon REAL,
    time_zone TEXT NOT NULL
);

-- table agreement_receipts on agreement_receipts
CREATE TABLE agreement_receipts (
    agreement_id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    received_at TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);

-- table blob_chunks on blob_chunks
CREATE TABLE blob_chunks (
    upload_id TEXT NOT NULL REFERENCES blob_uploads(id) ON DELETE CASCADE,
    offset INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (upload_id, offset)
);

-- table blob_uploads on blob_uploads
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

-- table blobs on blobs
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    data BLOB NOT NULL,
    created_at TEXT NOT NULL,
    uploaded_by INTEGER REFERENCES users(id)
);

-- table borrowers on borrowers
CREATE TABLE borrowers (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    full_name TEXT NOT NULL,
    national_id TEXT,
    phones TEXT NOT NULL DEFAULT '[]',
    home_address TEXT,
    home_lat REAL,
    home_lon REAL,
    work_address TEXT,
    employer TEXT,
    date_of_birth TEXT,
    contacts TEXT NOT NULL DEFAULT '[]',
    income TEXT,
    time_zone TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- table cases on cases
CREATE TABLE cases (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    borrower_id INTEGER NOT NULL REFERENCES borrowers(id),
    product TEXT NOT NULL,
    overdue_amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    days_past_due INTEGER NOT NULL,
    last_payment_date TEXT,
    last_payment_amount TEXT,
    hardship INTEGER NOT NULL DEFAULT 0,
    do_not_visit INTEGER NOT NULL DEFAULT 0,
    legal_hold INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    closed_at TEXT,
    content_hash TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- table device_cards on device_cards
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

-- table device_sync on device_sync
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

-- table devices on devices
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    registered_at TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by INTEGER REFERENCES users(id),
    revoke_reason TEXT,
    wipe_confirmed_at TEXT,
    last_seen_at TEXT
);

-- table exposure_ledger on exposure_ledger
CREATE TABLE exposure_ledger (
    seq INTEGER PRIMARY KEY,
    occurred_at TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    role TEXT NOT NULL,
    device_id TEXT,
    borrower_id INTEGER NOT NULL,
    case_id INTEGER,
    visit_id INTEGER,
    fields TEXT NOT NULL,
    purpose TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    request_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

-- table import_runs on import_runs
CREATE TABLE import_runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    user_id INTEGER,
    source TEXT NOT NULL,
    format TEXT NOT NULL,
    total_rows INTEGER NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    unchanged INTEGER NOT NULL,
    rejected INTEGER NOT NULL
);

-- table ledger_anchor on ledger_anchor
CREATE TABLE ledger_anchor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    checkpoint_id INTEGER NOT NULL REFERENCES ledger_checkpoints(id),
    start_seq INTEGER NOT NULL,
    start_hash TEXT NOT NULL
);

-- table ledger_checkpoints on ledger_checkpoints
CREATE TABLE ledger_checkpoints (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    head_seq INTEGER NOT NULL,
    head_hash TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    reason TEXT NOT NULL
);

-- table login_failures on login_failures
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    address TEXT NOT NULL,
    failed_at TEXT NOT NULL
);

-- table purge_certificates on purge_certificates
CREATE TABLE purge_certificates (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule TEXT NOT NULL,
    cutoff TEXT NOT NULL,
    removed_count INTEGER NOT NULL,
    checkpoint_id INTEGER REFERENCES ledger_checkpoints(id),
    details TEXT NOT NULL DEFAULT '{}',
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);

-- table refresh_tokens on refresh_tokens
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id),
    device_id TEXT REFERENCES devices(id),
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    revoked_at TEXT
);

-- table retention_gate on retention_gate
CREATE TABLE retention_gate (table_name TEXT PRIMARY KEY);

-- table schema_migrations on schema_migrations
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);

-- table sqlite_sequence on sqlite_sequence
CREATE TABLE sqlite_sequence(name,seq);

-- table staff_audit on staff_audit
CREATE TABLE staff_audit (
    id INTEGER PRIMARY KEY,
    occurred_at TEXT NOT NULL,
    user_id INTEGER,
    username TEXT,
    role TEXT,
    action TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    request_id TEXT,
    address TEXT
);

-- table sync_records on sync_records
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
, raw_digest TEXT);

-- table sync_rejections on sync_rejections
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

-- table users on users
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('agent', 'dispatcher', 'privacy_officer', 'admin')),
    display_name TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);

-- table visit_history on visit_history
CREATE TABLE visit_history (
    id INTEGER PRIMARY KEY,
    visit_id INTEGER NOT NULL REFERENCES visits(id),
    version INTEGER NOT NULL,
    agent_id INTEGER,
    visit_date TEXT NOT NULL,
    status TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    changed_by INTEGER,
    UNIQUE (visit_id, version)
);

-- table visits on visits
CREATE TABLE visits (
    id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases(id),
    agent_id INTEGER REFERENCES users(id),
    visit_date TEXT NOT NULL,
    window_start TEXT,
    window_end TEXT,
    route_order INTEGER,
    purpose TEXT NOT NULL,
    notes TEXT,
    status TEXT NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'cancelled', 'completed')),
    notice_kind TEXT,
    notice_given_at TEXT,
    notice_note TEXT,
    cancel_reason TEXT,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id),
    updated_by INTEGER REFERENCES users(id)
);

-- trigger agreement_receipts_no_delete on agreement_receipts
CREATE TRIGGER agreement_receipts_no_delete BEFORE DELETE ON agreement_receipts
WHEN NOT EXISTS (SELECT 1 FROM retention_gate WHERE table_name = 'agreement_receipts')
BEGIN SELECT RAISE(ABORT, 'agreement_receipts is append-only'); END;

-- trigger agreement_receipts_no_update on agreement_receipts
CREATE TRIGGER agreement_receipts_no_update BEFORE UPDATE ON agreement_receipts
BEGIN SELECT RAISE(ABORT, 'agreement_receipts is append-only'); END;

-- trigger exposure_ledger_no_delete on exposure_ledger
CREATE TRIGGER exposure_ledger_no_delete BEFORE DELETE ON exposure_ledger
WHEN NOT EXISTS (SELECT 1 FROM retention_gate WHERE table_name = 'exposure_ledger')
BEGIN SELECT RAISE(ABORT, 'exposure_ledger is append-only'); END;

-- trigger exposure_ledger_no_update on exposure_ledger
CREATE TRIGGER exposure_ledger_no_update BEFORE UPDATE ON exposure_ledger
BEGIN SELECT RAISE(ABORT, 'exposure_ledger is append-only'); END;

-- trigger ledger_checkpoints_no_delete on ledger_checkpoints
CREATE TRIGGER ledger_checkpoints_no_delete BEFORE DELETE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger_checkpoints is append-only'); END;

-- trigger ledger_checkpoints_no_update on ledger_checkpoints
CREATE TRIGGER ledger_checkpoints_no_update BEFORE UPDATE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger_checkpoints is append-only'); END;

-- trigger purge_certificates_no_delete on purge_certificates
CREATE TRIGGER purge_certificates_no_delete BEFORE DELETE ON purge_certificates
BEGIN SELECT RAISE(ABORT, 'purge_certificates is append-only'); END;

-- trigger purge_certificates_no_update on purge_certificates
CREATE TRIGGER purge_certificates_no_update BEFORE UPDATE ON purge_certificates
BEGIN SELECT RAISE(ABORT, 'purge_certificates is append-only'); END;

-- trigger staff_audit_no_delete on staff_audit
CREATE TRIGGER staff_audit_no_delete BEFORE DELETE ON staff_audit
WHEN NOT EXISTS (SELECT 1 FROM retention_gate WHERE table_name = 'staff_audit')
BEGIN SELECT RAISE(ABORT, 'staff_audit is append-only'); END;

-- trigger staff_audit_no_update on staff_audit
CREATE TRIGGER staff_audit_no_update BEFORE UPDATE ON staff_audit
BEGIN SELECT RAISE(ABORT, 'staff_audit is append-only'); END;

-- trigger sync_records_no_delete on sync_records
CREATE TRIGGER sync_records_no_delete BEFORE DELETE ON sync_records
WHEN NOT EXISTS (SELECT 1 FROM retention_gate WHERE table_name = 'sync_records')
BEGIN SELECT RAISE(ABORT, 'sync_records is append-only'); END;

-- trigger sync_records_no_update on sync_records
CREATE TRIGGER sync_records_no_update BEFORE UPDATE ON sync_records
BEGIN SELECT RAISE(ABORT, 'sync_records is append-only'); END;

