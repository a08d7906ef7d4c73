-- Accounts, devices and tokens; borrowers, cases and visits; the exposure ledger and the
-- staff audit log (both append-only); import runs.

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('agent', 'dispatcher', 'privacy_officer', 'admin')),
    display_name TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE TABLE agents (
    user_id INTEGER PRIMARY KEY REFERENCES users(id),
    badge_number TEXT NOT NULL UNIQUE,
    region TEXT,
    home_lat REAL,
    home_lon REAL,
    time_zone TEXT NOT NULL
);
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
CREATE INDEX devices_user ON devices(user_id);
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
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    address TEXT NOT NULL,
    failed_at TEXT NOT NULL
);
CREATE INDEX login_failures_user ON login_failures(username, failed_at);
CREATE INDEX login_failures_address ON login_failures(address, failed_at);

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
CREATE INDEX cases_borrower ON cases(borrower_id);

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
CREATE INDEX visits_agent_date ON visits(agent_id, visit_date, route_order);
CREATE INDEX visits_case_date ON visits(case_id, visit_date);
CREATE INDEX visits_date ON visits(visit_date);

-- Every version of every visit: who had it assigned when (audit, reconciliation).
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

-- What each agent's devices must learn on their next pull, in order.
CREATE TABLE agent_feed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id INTEGER NOT NULL REFERENCES users(id),
    visit_id INTEGER NOT NULL REFERENCES visits(id),
    kind TEXT NOT NULL CHECK (kind IN ('upsert', 'purge')),
    reason TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX agent_feed_agent ON agent_feed(agent_id, seq);

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
CREATE INDEX exposure_ledger_borrower ON exposure_ledger(borrower_id, occurred_at);
CREATE INDEX exposure_ledger_user ON exposure_ledger(user_id, occurred_at);
CREATE INDEX exposure_ledger_device ON exposure_ledger(device_id, occurred_at);
CREATE INDEX exposure_ledger_time ON exposure_ledger(occurred_at);

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
CREATE INDEX staff_audit_time ON staff_audit(occurred_at);
CREATE INDEX staff_audit_action ON staff_audit(action, occurred_at);

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

CREATE TRIGGER exposure_ledger_no_update BEFORE UPDATE ON exposure_ledger
BEGIN SELECT RAISE(ABORT, 'exposure_ledger is append-only'); END;
CREATE TRIGGER exposure_ledger_no_delete BEFORE DELETE ON exposure_ledger
BEGIN SELECT RAISE(ABORT, 'exposure_ledger is append-only'); END;

CREATE TRIGGER staff_audit_no_update BEFORE UPDATE ON staff_audit
BEGIN SELECT RAISE(ABORT, 'staff_audit is append-only'); END;
CREATE TRIGGER staff_audit_no_delete BEFORE DELETE ON staff_audit
BEGIN SELECT RAISE(ABORT, 'staff_audit is append-only'); END;
