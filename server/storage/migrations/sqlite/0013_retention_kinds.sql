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

INSERT OR IGNORE INTO blob_references (sha256, record_id)
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
  AND json_type(record.body, '$.agent_signature_sha256') = 'text';

-- Two triggers, so a record without attachments (most visit reports) costs one test.
CREATE TRIGGER sync_records_reference_attachments AFTER INSERT ON sync_records
WHEN json_valid(NEW.body) AND json_array_length(NEW.body, '$.attachments') > 0
BEGIN
    INSERT OR IGNORE INTO blob_references (sha256, record_id)
    SELECT value, NEW.id FROM json_each(NEW.body, '$.attachments') WHERE type = 'text';
END;
CREATE TRIGGER sync_records_reference_signatures AFTER INSERT ON sync_records
WHEN NEW.kind = 'agreement' AND json_valid(NEW.body)
BEGIN
    INSERT OR IGNORE INTO blob_references (sha256, record_id)
    SELECT value, NEW.id FROM json_each(json_array(
        json_extract(NEW.body, '$.borrower_signature_sha256'),
        json_extract(NEW.body, '$.agent_signature_sha256'))) WHERE type = 'text';
END;

-- The redactions made in stored records' bodies: which field, when, under which certificate.
CREATE TABLE record_redactions (
    record_id TEXT NOT NULL,
    field TEXT NOT NULL,
    redacted_at TEXT NOT NULL,
    certificate_id INTEGER NOT NULL REFERENCES purge_certificates(id),
    PRIMARY KEY (record_id, field)
);

-- A record removed under the evidence clock takes its references and redaction notes along.
CREATE TRIGGER sync_records_references_follow AFTER DELETE ON sync_records
BEGIN
    DELETE FROM blob_references WHERE record_id = OLD.id;
    DELETE FROM record_redactions WHERE record_id = OLD.id;
END;

CREATE TRIGGER blob_references_no_update BEFORE UPDATE ON blob_references
BEGIN SELECT RAISE(ABORT, 'blob_references is append-only'); END;
CREATE TRIGGER blob_references_no_delete BEFORE DELETE ON blob_references
WHEN EXISTS (SELECT 1 FROM sync_records WHERE id = OLD.record_id)
BEGIN SELECT RAISE(ABORT, 'a stored record still references this blob'); END;

CREATE TRIGGER blobs_no_delete BEFORE DELETE ON blobs
WHEN EXISTS (SELECT 1 FROM blob_references WHERE sha256 = OLD.sha256)
BEGIN SELECT RAISE(ABORT, 'a stored record references this blob'); END;

CREATE TRIGGER blobs_no_update BEFORE UPDATE ON blobs
BEGIN SELECT RAISE(ABORT, 'blobs are content-addressed and never change'); END;

CREATE TRIGGER record_redactions_no_update BEFORE UPDATE ON record_redactions
BEGIN SELECT RAISE(ABORT, 'record_redactions is append-only'); END;
CREATE TRIGGER record_redactions_no_delete BEFORE DELETE ON record_redactions
WHEN EXISTS (SELECT 1 FROM sync_records WHERE id = OLD.record_id)
BEGIN SELECT RAISE(ABORT, 'record_redactions is append-only'); END;

DROP TRIGGER sync_records_no_update;
CREATE TRIGGER sync_records_no_update BEFORE UPDATE ON sync_records
WHEN NOT (
    NEW.seq IS OLD.seq AND NEW.id IS OLD.id AND NEW.kind IS OLD.kind
    AND NEW.agent_id IS OLD.agent_id AND NEW.device_id IS OLD.device_id
    AND NEW.visit_id IS OLD.visit_id AND NEW.case_id IS OLD.case_id
    AND NEW.device_seq IS OLD.device_seq AND NEW.recorded_at IS OLD.recorded_at
    AND NEW.received_at IS OLD.received_at AND NEW.digest IS OLD.digest
    AND NEW.raw_digest IS OLD.raw_digest AND NEW.status IS OLD.status
    AND NEW.outcome IS OLD.outcome
    AND json_valid(NEW.body) AND json_valid(OLD.body)
    AND json_type(OLD.body, '$.notes') = 'text'
    AND json_extract(NEW.body, '$.notes') = '[redacted]'
    AND json_remove(NEW.body, '$.notes') = json_remove(OLD.body, '$.notes')
    AND EXISTS (
        SELECT 1 FROM retention_gate g JOIN purge_certificates c ON c.id = g.certificate_id
        WHERE g.table_name = 'sync_records' AND c.kind = 'free_text_notes'
          AND c.id = (SELECT max(id) FROM purge_certificates WHERE kind = 'free_text_notes')
          AND EXISTS (SELECT 1 FROM cases k WHERE k.id = OLD.case_id AND k.closed_at < c.cutoff)
          AND doorstep_certified(c.created_at, c.kind, c.rule, c.cutoff, c.removed_count,
                                 c.checkpoint_id, c.details, c.key_id, c.signature)
    )
)
BEGIN SELECT RAISE(ABORT, 'sync_records is append-only'); END;
