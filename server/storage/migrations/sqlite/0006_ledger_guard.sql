-- Tamper evidence of the exposure ledger against someone who can write the database file:
-- the keyring of checkpoint keys, fast lookups of the latest checkpoint and certificate,
-- and a retention gate that opens only for rows a signed purge certificate authorises.

-- Every public key that signed (or signs) checkpoints and certificates. A key enters only
-- through `flask keys` (or the first start of an empty keyring); it is also written to the
-- keyring file beside the external checkpoint files.
CREATE TABLE ledger_keys (
    key_id TEXT PRIMARY KEY,
    public_key_pem TEXT NOT NULL,
    added_at TEXT NOT NULL,
    added_by TEXT NOT NULL,
    endorsed_by TEXT,
    endorsement TEXT
);
CREATE TRIGGER ledger_keys_no_update BEFORE UPDATE ON ledger_keys
BEGIN SELECT RAISE(ABORT, 'ledger_keys is append-only'); END;
CREATE TRIGGER ledger_keys_no_delete BEFORE DELETE ON ledger_keys
BEGIN SELECT RAISE(ABORT, 'ledger_keys is append-only'); END;

CREATE INDEX ledger_checkpoints_head ON ledger_checkpoints (head_seq, id);
CREATE INDEX purge_certificates_kind ON purge_certificates (kind, id);

-- A gate row names the purge certificate that authorises it. doorstep_certified() checks
-- the certificate's Ed25519 signature: Doorstep's connections define it (false unless a
-- purge supplied the key), and a connection without it cannot delete at all.
DROP TABLE retention_gate;
CREATE TABLE retention_gate (table_name TEXT PRIMARY KEY, certificate_id INTEGER);

DROP TRIGGER exposure_ledger_no_delete;
CREATE TRIGGER exposure_ledger_no_delete BEFORE DELETE ON exposure_ledger
WHEN NOT EXISTS (
    SELECT 1 FROM retention_gate g JOIN purge_certificates c ON c.id = g.certificate_id
    WHERE g.table_name = 'exposure_ledger' AND c.kind = 'exposure_ledger'
      AND OLD.seq BETWEEN json_extract(c.details, '$.from_seq')
                      AND json_extract(c.details, '$.to_seq')
      AND doorstep_certified(c.created_at, c.kind, c.rule, c.cutoff, c.removed_count,
                             c.checkpoint_id, c.details, c.key_id, c.signature)
)
BEGIN SELECT RAISE(ABORT, 'exposure_ledger is append-only'); END;

DROP TRIGGER sync_records_no_delete;
CREATE TRIGGER sync_records_no_delete BEFORE DELETE ON sync_records
WHEN NOT EXISTS (
    SELECT 1 FROM retention_gate g JOIN purge_certificates c ON c.id = g.certificate_id
    WHERE g.table_name = 'sync_records' AND c.kind = 'compliance_evidence'
      AND c.id = (SELECT max(id) FROM purge_certificates WHERE kind = 'compliance_evidence')
      AND OLD.received_at < c.cutoff
      AND doorstep_certified(c.created_at, c.kind, c.rule, c.cutoff, c.removed_count,
                             c.checkpoint_id, c.details, c.key_id, c.signature)
)
BEGIN SELECT RAISE(ABORT, 'sync_records is append-only'); END;

DROP TRIGGER agreement_receipts_no_delete;
CREATE TRIGGER agreement_receipts_no_delete BEFORE DELETE ON agreement_receipts
WHEN NOT EXISTS (
    SELECT 1 FROM retention_gate g JOIN purge_certificates c ON c.id = g.certificate_id
    WHERE g.table_name = 'agreement_receipts' AND c.kind = 'compliance_evidence'
      AND c.id = (SELECT max(id) FROM purge_certificates WHERE kind = 'compliance_evidence')
      AND doorstep_certified(c.created_at, c.kind, c.rule, c.cutoff, c.removed_count,
                             c.checkpoint_id, c.details, c.key_id, c.signature)
)
BEGIN SELECT RAISE(ABORT, 'agreement_receipts is append-only'); END;

-- No purge removes staff actions: the gate does not open for them.
DROP TRIGGER staff_audit_no_delete;
CREATE TRIGGER staff_audit_no_delete BEFORE DELETE ON staff_audit
BEGIN SELECT RAISE(ABORT, 'staff_audit is append-only'); END;
