-- Retention reaches attachments and free-text notes (docs/retention.md).
--
-- Attachments: which stored record references which blob, kept by triggers so no writer can
-- forget it. A blob a stored record references cannot be deleted; its references go only
-- with the record (itself removed only under a signed evidence certificate).
--
-- Notes: a stored record's body may change in one way only, its `notes` replaced by the
-- marker '[redacted]', under the newest signed free-text-notes certificate; every such
-- redaction is recorded. The record's digest stays the digest of the body as received.

CREATE TABLE blob_references (
    sha256 TEXT NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (sha256, record_id)
);
CREATE INDEX blob_references_record ON blob_references(record_id);

INSERT INTO blob_references (sha256, record_id)
SELECT attachment.value, record.id
FROM sync_records AS record, json_each(record.body, '$.attachments') AS attachment
WHERE json_valid(record.body) AND attachment.type = 'text'
UNION
SELECT json_extract(record.body, '$.borrower_signature_sha256'), record.id
FROM sync_records AS record
WHERE record.kind = 'agreement' AND json_valid(record.body)
  AND json_type(record.body, '$.borrower_signature_sha256') = 'text'
UNION
SELECT json_extract(record.body, '$.agent_signature_sha256'), record.id
FROM sync_records AS record
WHERE record.kind = 'agreement' AND json_valid(record.body)
  AND json_type(record.body, '$.agent_signature_sha256') = 'text'
ON CONFLICT DO NOTHING;

-- Two triggers, so a record without attachments (most visit reports) costs one test (no
-- parsing). The server stores only bodies it serialised itself, so the body parses.
CREATE FUNCTION doorstep_reference_blobs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    doc jsonb := NEW.body::jsonb;
BEGIN
    IF TG_ARGV[0] = 'attachments' THEN
        INSERT INTO blob_references (sha256, record_id)
        SELECT a.value #>> '{}', NEW.id
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(doc -> 'attachments') = 'array'
                                       THEN doc -> 'attachments' ELSE '[]'::jsonb END)
             AS a(value)
        WHERE jsonb_typeof(a.value) = 'string'
        ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO blob_references (sha256, record_id)
        SELECT s.value #>> '{}', NEW.id
        FROM (VALUES (doc -> 'borrower_signature_sha256'), (doc -> 'agent_signature_sha256'))
             AS s(value)
        WHERE jsonb_typeof(s.value) = 'string'
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER sync_records_reference_attachments AFTER INSERT ON sync_records
FOR EACH ROW WHEN (strpos(NEW.body, '"attachments"') > 0)
EXECUTE FUNCTION doorstep_reference_blobs('attachments');
CREATE TRIGGER sync_records_reference_signatures AFTER INSERT ON sync_records
FOR EACH ROW WHEN (NEW.kind = 'agreement')
EXECUTE FUNCTION doorstep_reference_blobs('signatures');

-- The redactions made in stored records' bodies: which field, when, under which certificate.
CREATE TABLE record_redactions (
    record_id TEXT NOT NULL,
    field TEXT NOT NULL,
    redacted_at TEXT NOT NULL,
    certificate_id BIGINT NOT NULL REFERENCES purge_certificates(id),
    PRIMARY KEY (record_id, field)
);

-- A record removed under the evidence clock takes its references and redaction notes along.
CREATE FUNCTION doorstep_references_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM blob_references WHERE record_id = OLD.id;
    DELETE FROM record_redactions WHERE record_id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER sync_records_references_follow AFTER DELETE ON sync_records
FOR EACH ROW EXECUTE FUNCTION doorstep_references_follow();

CREATE TRIGGER blob_references_no_update BEFORE UPDATE ON blob_references
FOR EACH ROW EXECUTE FUNCTION doorstep_refuse('blob_references is append-only');

CREATE FUNCTION doorstep_blob_reference_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'blobs' THEN
        IF EXISTS (SELECT 1 FROM blob_references WHERE sha256 = OLD.sha256) THEN
            RAISE EXCEPTION 'a stored record references this blob'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF EXISTS (SELECT 1 FROM sync_records WHERE id = OLD.record_id) THEN
        IF TG_TABLE_NAME = 'blob_references' THEN
            RAISE EXCEPTION 'a stored record still references this blob'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RAISE EXCEPTION 'record_redactions is append-only'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER blob_references_no_delete BEFORE DELETE ON blob_references
FOR EACH ROW EXECUTE FUNCTION doorstep_blob_reference_guard();
CREATE TRIGGER blobs_no_delete BEFORE DELETE ON blobs
FOR EACH ROW EXECUTE FUNCTION doorstep_blob_reference_guard();

CREATE TRIGGER blobs_no_update BEFORE UPDATE ON blobs
FOR EACH ROW EXECUTE FUNCTION doorstep_refuse('blobs are content-addressed and never change');

CREATE TRIGGER record_redactions_no_update BEFORE UPDATE ON record_redactions
FOR EACH ROW EXECUTE FUNCTION doorstep_refuse('record_redactions is append-only');
CREATE TRIGGER record_redactions_no_delete BEFORE DELETE ON record_redactions
FOR EACH ROW EXECUTE FUNCTION doorstep_blob_reference_guard();

-- A stored record changes in one way only: its notes redacted under the newest signed
-- free-text-notes certificate.
CREATE FUNCTION doorstep_record_update_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq IS NOT DISTINCT FROM OLD.seq AND NEW.id IS NOT DISTINCT FROM OLD.id
       AND NEW.kind IS NOT DISTINCT FROM OLD.kind
       AND NEW.agent_id IS NOT DISTINCT FROM OLD.agent_id
       AND NEW.device_id IS NOT DISTINCT FROM OLD.device_id
       AND NEW.visit_id IS NOT DISTINCT FROM OLD.visit_id
       AND NEW.case_id IS NOT DISTINCT FROM OLD.case_id
       AND NEW.device_seq IS NOT DISTINCT FROM OLD.device_seq
       AND NEW.recorded_at IS NOT DISTINCT FROM OLD.recorded_at
       AND NEW.received_at IS NOT DISTINCT FROM OLD.received_at
       AND NEW.digest IS NOT DISTINCT FROM OLD.digest
       AND NEW.raw_digest IS NOT DISTINCT FROM OLD.raw_digest
       AND NEW.status IS NOT DISTINCT FROM OLD.status
       AND NEW.outcome IS NOT DISTINCT FROM OLD.outcome
       AND json_valid(NEW.body) AND json_valid(OLD.body)
       AND json_type(OLD.body, '$.notes') = 'text'
       AND json_extract(NEW.body, '$.notes') = '[redacted]'
       AND json_remove(NEW.body, '$.notes') = json_remove(OLD.body, '$.notes')
       AND EXISTS (
           SELECT 1 FROM retention_gate g JOIN purge_certificates c ON c.id = g.certificate_id
           WHERE g.table_name = 'sync_records' AND c.kind = 'free_text_notes'
             AND c.id = (SELECT max(id) FROM purge_certificates WHERE kind = 'free_text_notes')
             AND EXISTS (SELECT 1 FROM cases k WHERE k.id = OLD.case_id
                         AND k.closed_at < c.cutoff)
             AND doorstep_certified(c.created_at, c.kind, c.rule, c.cutoff, c.removed_count,
                                 c.checkpoint_id, c.details, c.key_id, c.signature))
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'sync_records is append-only' USING ERRCODE = 'integrity_constraint_violation';
END $$;
DROP TRIGGER sync_records_no_update ON sync_records;
CREATE TRIGGER sync_records_no_update BEFORE UPDATE ON sync_records
FOR EACH ROW EXECUTE FUNCTION doorstep_record_update_guard();
