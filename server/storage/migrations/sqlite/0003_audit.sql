-- Ledger checkpoints, the retention anchor and purge certificates; the append-only tables'
-- delete triggers open only through retention_gate, inside a retention purge.

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

CREATE TRIGGER ledger_checkpoints_no_update BEFORE UPDATE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger_checkpoints is append-only'); END;
CREATE TRIGGER ledger_checkpoints_no_delete BEFORE DELETE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger_checkpoints is append-only'); END;

CREATE TRIGGER purge_certificates_no_update BEFORE UPDATE ON purge_certificates
BEGIN SELECT RAISE(ABORT, 'purge_certificates is append-only'); END;
CREATE TRIGGER purge_certificates_no_delete BEFORE DELETE ON purge_certificates
BEGIN SELECT RAISE(ABORT, 'purge_certificates is append-only'); END;

DROP TRIGGER exposure_ledger_no_delete;
CREATE TRIGGER exposure_ledger_no_delete BEFORE DELETE ON exposure_ledger
WHEN NOT EXISTS (SELECT 1 FROM retention_gate WHERE table_name = 'exposure_ledger')
BEGIN SELECT RAISE(ABORT, 'exposure_ledger is append-only'); END;

DROP TRIGGER sync_records_no_delete;
CREATE TRIGGER sync_records_no_delete BEFORE DELETE ON sync_records
WHEN NOT EXISTS (SELECT 1 FROM retention_gate WHERE table_name = 'sync_records')
BEGIN SELECT RAISE(ABORT, 'sync_records is append-only'); END;

DROP TRIGGER agreement_receipts_no_delete;
CREATE TRIGGER agreement_receipts_no_delete BEFORE DELETE ON agreement_receipts
WHEN NOT EXISTS (SELECT 1 FROM retention_gate WHERE table_name = 'agreement_receipts')
BEGIN SELECT RAISE(ABORT, 'agreement_receipts is append-only'); END;

DROP TRIGGER staff_audit_no_delete;
CREATE TRIGGER staff_audit_no_delete BEFORE DELETE ON staff_audit
WHEN NOT EXISTS (SELECT 1 FROM retention_gate WHERE table_name = 'staff_audit')
BEGIN SELECT RAISE(ABORT, 'staff_audit is append-only'); END;
