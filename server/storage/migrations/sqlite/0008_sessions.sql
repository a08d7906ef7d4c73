-- Sessions that end, and login throttling that cannot lock people out (docs/security.md).

-- Failed logins in a row per (username, address) pair: the pair's back-off. login_failures
-- keeps every failure for the per-username and per-address caps.
CREATE TABLE login_pair_failures (
    username TEXT NOT NULL,
    address TEXT NOT NULL,
    failures INTEGER NOT NULL,
    last_failed_at TEXT NOT NULL,
    PRIMARY KEY (username, address)
);

-- A session is one login: its refresh-token family, and the `sid` claim of every access
-- token issued in it. Ending it (logout, refresh-token reuse, device revoked, account
-- disabled) refuses those access tokens at once, not when they expire.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    device_id TEXT REFERENCES devices(id),
    started_at TEXT NOT NULL,
    ended_at TEXT,
    end_reason TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_device ON sessions(device_id);
-- Families issued before this version become sessions; one whose every token is revoked
-- has ended.
INSERT INTO sessions (id, user_id, device_id, started_at, ended_at, end_reason)
SELECT family_id, MIN(user_id), MIN(device_id), MIN(issued_at),
       CASE WHEN COUNT(revoked_at) = COUNT(*) THEN MAX(revoked_at) END,
       CASE WHEN COUNT(revoked_at) = COUNT(*) THEN 'revoked' END
FROM refresh_tokens GROUP BY family_id;

-- A password someone else handed over (a privacy officer's one-time code, an admin's
-- reset) must be replaced at the next login, and stops working after a while.
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN password_expires_at TEXT;

-- Separation of duties: privacy-officer access is requested by an admin and granted by an
-- existing privacy officer, never by the admin alone.
CREATE TABLE role_grants (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL CHECK (kind IN ('privacy_officer_access', 'privacy_officer_reset')),
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    requested_by INTEGER REFERENCES users(id),
    requested_at TEXT NOT NULL,
    reason TEXT,
    decided_by INTEGER REFERENCES users(id),
    decided_at TEXT,
    decision_note TEXT
);
CREATE INDEX role_grants_status ON role_grants(status, id);
CREATE INDEX role_grants_user ON role_grants(user_id);
