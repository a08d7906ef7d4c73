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
FOR EACH ROW EXECUTE FUNCTION doorstep_refuse('ledger_keys is append-only');
CREATE TRIGGER ledger_keys_no_delete BEFORE DELETE ON ledger_keys
FOR EACH ROW EXECUTE FUNCTION doorstep_refuse('ledger_keys is append-only');

CREATE INDEX ledger_checkpoints_head ON ledger_checkpoints (head_seq, id);
CREATE INDEX purge_certificates_kind ON purge_certificates (kind, id);

-- A gate row names the purge certificate that authorises it. doorstep_certified() checks
-- the certificate's signature. PostgreSQL: a function of the schema cannot check Ed25519,
-- so the purge checks the certificate in the server (with the ledger keyring) inside its
-- own transaction and names the signatures it vouched for in the transaction-local
-- setting doorstep.certified (server/storage/retention.py); outside a purge it is empty
-- and no certificate is honoured.
DROP TABLE retention_gate;
CREATE TABLE retention_gate (table_name TEXT PRIMARY KEY, certificate_id BIGINT);

CREATE FUNCTION doorstep_certified(
    created_at text, kind text, rule text, cutoff text, removed_count bigint,
    checkpoint_id bigint, details text, key_id text, signature text
) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT signature = ANY(string_to_array(
        coalesce(current_setting('doorstep.certified', true), ''), ' '))
$$;

CREATE OR REPLACE FUNCTION doorstep_gated_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    allowed boolean;
BEGIN
    IF TG_TABLE_NAME = 'exposure_ledger' THEN
        allowed := EXISTS (
            SELECT 1 FROM retention_gate g JOIN purge_certificates c ON c.id = g.certificate_id
            WHERE g.table_name = 'exposure_ledger' AND c.kind = 'exposure_ledger'
              AND OLD.seq BETWEEN json_extract(c.details, '$.from_seq')::bigint
                              AND json_extract(c.details, '$.to_seq')::bigint
              AND doorstep_certified(c.created_at, c.kind, c.rule, c.cutoff, c.removed_count,
                                 c.checkpoint_id, c.details, c.key_id, c.signature));
    ELSIF TG_TABLE_NAME = 'sync_records' THEN
        allowed := EXISTS (
            SELECT 1 FROM retention_gate g JOIN purge_certificates c ON c.id = g.certificate_id
            WHERE g.table_name = 'sync_records' AND c.kind = 'compliance_evidence'
              AND c.id = (SELECT max(id) FROM purge_certificates
                          WHERE kind = 'compliance_evidence')
              AND OLD.received_at < c.cutoff
              AND doorstep_certified(c.created_at, c.kind, c.rule, c.cutoff, c.removed_count,
                                 c.checkpoint_id, c.details, c.key_id, c.signature));
    ELSIF TG_TABLE_NAME = 'agreement_receipts' THEN
        allowed := EXISTS (
            SELECT 1 FROM retention_gate g JOIN purge_certificates c ON c.id = g.certificate_id
            WHERE g.table_name = 'agreement_receipts' AND c.kind = 'compliance_evidence'
              AND c.id = (SELECT max(id) FROM purge_certificates
                          WHERE kind = 'compliance_evidence')
              AND doorstep_certified(c.created_at, c.kind, c.rule, c.cutoff, c.removed_count,
                                 c.checkpoint_id, c.details, c.key_id, c.signature));
    ELSE
        allowed := false;
    END IF;
    IF NOT allowed THEN
        RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN OLD;
END $$;

-- No purge removes staff actions: the gate does not open for them.
DROP TRIGGER staff_audit_no_delete ON staff_audit;
CREATE TRIGGER staff_audit_no_delete BEFORE DELETE ON staff_audit
FOR EACH ROW EXECUTE FUNCTION doorstep_refuse('staff_audit is append-only');
