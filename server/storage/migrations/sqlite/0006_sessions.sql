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
