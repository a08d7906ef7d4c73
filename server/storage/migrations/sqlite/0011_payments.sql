-- Payments received from the bank's core system, and promises to pay from sources other than
-- visit reports (docs/promises.md).

-- A payment is a fact from the bank, stored once per payment id and never changed: a
-- re-import with the same content is a no-op, one with other content is refused.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,              -- the bank's payment id
    case_id INTEGER NOT NULL REFERENCES cases(id),
    amount TEXT NOT NULL,             -- decimal text with two fraction digits, like agreements
    currency TEXT NOT NULL,
    paid_at TEXT NOT NULL,            -- UTC
    source TEXT NOT NULL,             -- the bank's channel: bank_transfer, card, cash, ...
    content_hash TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    imported_by INTEGER REFERENCES users(id)
);
CREATE INDEX payments_case ON payments(case_id, paid_at);

CREATE TRIGGER payments_no_update BEFORE UPDATE ON payments
BEGIN SELECT RAISE(ABORT, 'payments are append-only'); END;

-- Promises recorded elsewhere than a visit report (a phone call, a letter's reply): each
-- source inserts its own rows. Visit-report promises stay where the push stored them.
CREATE TABLE promises (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,             -- phone_call, sms, ... (never visit_report)
    source_id TEXT NOT NULL,          -- the id of the entry that recorded it
    case_id INTEGER NOT NULL REFERENCES cases(id),
    agent_id INTEGER REFERENCES users(id),
    visit_id INTEGER REFERENCES visits(id),
    amount TEXT NOT NULL,
    due_date TEXT NOT NULL,           -- YYYY-MM-DD
    made_at TEXT NOT NULL,            -- UTC
    UNIQUE (source, source_id)
);
CREATE INDEX promises_case ON promises(case_id);

-- Every promise to pay, whatever recorded it: the one place the tracking reads them from.
CREATE VIEW all_promises AS
SELECT 'visit_report' AS source, r.id AS source_id, r.case_id, r.agent_id, r.visit_id,
       json_extract(r.body, '$.promise_amount') AS amount,
       json_extract(r.body, '$.promise_date') AS due_date,
       r.recorded_at AS made_at
FROM sync_records r
WHERE r.kind = 'visit_report'
  AND json_extract(r.body, '$.outcome') = 'promise_to_pay'
  AND json_extract(r.body, '$.promise_amount') IS NOT NULL
  AND json_extract(r.body, '$.promise_date') IS NOT NULL
UNION ALL
SELECT source, source_id, case_id, agent_id, visit_id, amount, due_date, made_at FROM promises;
