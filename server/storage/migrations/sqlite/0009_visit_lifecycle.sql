-- The visit and case lifecycle: what happened at the door moves a visit on (its last outcome
-- and number of attempts; the statuses attempted and missed), a case has the statuses of how
-- it ended and two more flags, every change of a case is kept with its reason, a borrower's
-- requests are records of their own, and a marker lets the day close run once per boundary.
-- The two status CHECKs are widened by the Python hook beside this file.

ALTER TABLE visits ADD COLUMN last_outcome TEXT;
ALTER TABLE visits ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
-- arrived_at of the report that gave last_outcome (the latest at the door, not on the wire).
ALTER TABLE visits ADD COLUMN last_attempt_at TEXT;
CREATE INDEX visits_status_date ON visits(status, visit_date);

ALTER TABLE cases ADD COLUMN dispute INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN deceased INTEGER NOT NULL DEFAULT 0;

-- Every change of a case's status or flags, with who, why and through what.
CREATE TABLE case_history (
    id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases(id),
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    flags TEXT NOT NULL,
    reason TEXT,
    source TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    changed_by INTEGER REFERENCES users(id)
);
CREATE INDEX case_history_case ON case_history(case_id, version);

-- What a borrower asked for (sync/cases.py names the kinds, sources and channels): where it
-- came from, who took it and when, and its withdrawal the same way.
CREATE TABLE borrower_requests (
    id INTEGER PRIMARY KEY,
    borrower_id INTEGER NOT NULL REFERENCES borrowers(id),
    kind TEXT NOT NULL,
    channel TEXT,
    window_start TEXT,
    window_end TEXT,
    weekdays TEXT,
    valid_from TEXT,
    valid_until TEXT,
    evidence TEXT,
    note TEXT,
    source TEXT NOT NULL,
    visit_id INTEGER REFERENCES visits(id),
    taken_by INTEGER NOT NULL REFERENCES users(id),
    taken_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    withdrawn_at TEXT,
    withdrawal_source TEXT,
    withdrawn_by INTEGER REFERENCES users(id),
    withdrawal_recorded_at TEXT
);
CREATE INDEX borrower_requests_borrower ON borrower_requests(borrower_id, kind);

-- A case change orders the purge of every card of the case, on every device.
CREATE INDEX device_cards_case ON device_cards(case_id, purge_confirmed_at);

-- The last quarter-hour boundary (UTC) at which the day close ran: every local midnight is
-- on one, so running once per boundary misses no day's end.
CREATE TABLE day_close (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    closed_through TEXT NOT NULL
);
