"""Versioned schema migrations; running them twice is a no-op."""

from __future__ import annotations

import sqlite3

import sqlite_utils

from .connection import transaction

_APPEND_ONLY = """
CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
"""

CORE = (
    """
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
"""
    + _APPEND_ONLY.format(table="exposure_ledger")
    + _APPEND_ONLY.format(table="staff_audit")
)

SYNC = (
    """
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
"""
    + _APPEND_ONLY.format(table="sync_records")
    + _APPEND_ONLY.format(table="agreement_receipts")
)

_GATED_DELETE = """
DROP TRIGGER {table}_no_delete;
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
WHEN NOT EXISTS (SELECT 1 FROM retention_gate WHERE table_name = '{table}')
BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
"""

AUDIT = (
    """
-- Signed chain heads of the exposure ledger: kept here and exported to files elsewhere.
CREATE TABLE ledger_checkpoints (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    head_seq INTEGER NOT NULL,
    head_hash TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    reason TEXT NOT NULL
);
-- The chain's starting point once old entries were removed under the retention rule.
CREATE TABLE ledger_anchor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    checkpoint_id INTEGER NOT NULL REFERENCES ledger_checkpoints(id),
    start_seq INTEGER NOT NULL,
    start_hash TEXT NOT NULL
);
-- What a retention purge removed: kind, count, rule, time, checkpoint; never the values.
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
-- Opened (one row per table) only inside a retention purge's own transaction.
CREATE TABLE retention_gate (table_name TEXT PRIMARY KEY);
"""
    + _APPEND_ONLY.format(table="ledger_checkpoints")
    + _APPEND_ONLY.format(table="purge_certificates")
    + _GATED_DELETE.format(table="exposure_ledger")
    + _GATED_DELETE.format(table="sync_records")
    + _GATED_DELETE.format(table="agreement_receipts")
    + _GATED_DELETE.format(table="staff_audit")
)

# A digest of the record exactly as the device sent it, so a replayed batch is answered
# without validating and reconciling it again. Never set for a body with typed ID characters.
RAW_DIGEST = """
ALTER TABLE sync_records ADD COLUMN raw_digest TEXT;
"""

# (version, name, script). Append only: a released migration is never edited.
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "core", CORE),
    (2, "sync", SYNC),
    (3, "audit", AUDIT),
    (4, "raw record digests", RAW_DIGEST),
]


def migrate(db: sqlite_utils.Database, now_iso: str) -> list[int]:
    """Apply every migration not yet applied; returns the versions applied now."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied: list[int] = []
    for version, name, script in MIGRATIONS:
        with transaction(db):
            done = db.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", [version]
            ).fetchone()
            if done:
                continue
            for statement in _split(script):
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                [version, name, now_iso],
            )
            applied.append(version)
    return applied


def _split(script: str) -> list[str]:
    """Split a script into statements; sqlite3 knows where a trigger body ends."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        if not current and (not line.strip() or line.strip().startswith("--")):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements
