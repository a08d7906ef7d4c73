-- Flag review: every compliance flag on a stored field record is a review item, named by
-- (record id, flag code). An item with no row here is open at version 0, so a push writes
-- nothing for review; the first transition creates the row.

CREATE TABLE flag_reviews (
    record_id TEXT NOT NULL,
    code TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'assigned', 'resolved')),
    assignee_id INTEGER REFERENCES users(id),
    disposition TEXT CHECK (disposition IN ('justified', 'breach', 'data_error')),
    comment TEXT,
    resolved_by INTEGER REFERENCES users(id),
    resolved_at TEXT,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by INTEGER REFERENCES users(id),
    PRIMARY KEY (record_id, code)
);
CREATE INDEX flag_reviews_status ON flag_reviews(status, disposition);

-- Every transition of an item: who, when, from and to which status, and the comment.
CREATE TABLE flag_review_history (
    id INTEGER PRIMARY KEY,
    record_id TEXT NOT NULL,
    code TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('assign', 'resolve', 'reopen')),
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    assignee_id INTEGER REFERENCES users(id),
    disposition TEXT,
    comment TEXT,
    version INTEGER NOT NULL,
    acted_by INTEGER REFERENCES users(id),
    acted_at TEXT NOT NULL
);
CREATE INDEX flag_review_history_item ON flag_review_history(record_id, code, id);

CREATE TRIGGER flag_review_history_no_update BEFORE UPDATE ON flag_review_history
BEGIN SELECT RAISE(ABORT, 'flag_review_history is append-only'); END;

-- A record removed by the retention purge (signed certificate) takes its reviews with it:
-- they are compliance evidence on the same clock.
CREATE TRIGGER sync_records_reviews_follow AFTER DELETE ON sync_records
BEGIN
    DELETE FROM flag_reviews WHERE record_id = OLD.id;
    DELETE FROM flag_review_history WHERE record_id = OLD.id;
END;
