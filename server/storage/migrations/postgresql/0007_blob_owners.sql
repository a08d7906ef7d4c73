-- Who uploaded each blob: an attachment is the business of the agents who sent its bytes.
-- Its metadata is shown to them (and to staff once a record references it), a record may
-- reference only its author's blobs, and a device's blobs that no record of their uploader
-- references count against its quota and expire. One row per (blob, uploading agent), with
-- the device it came from and the content type that agent declared.

CREATE TABLE blob_owners (
    sha256 TEXT NOT NULL REFERENCES blobs(sha256) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id),
    device_id TEXT,
    content_type TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- when a stored record of this agent first referenced the blob; NULL: not yet
    referenced_at TEXT,
    PRIMARY KEY (sha256, user_id)
);
CREATE INDEX blob_owners_unreferenced ON blob_owners(referenced_at, created_at);
CREATE INDEX blob_owners_device ON blob_owners(device_id, referenced_at);

-- Blobs stored before owners were kept belong to the agent who uploaded them (the device is
-- unknown); those their agent's records reference count as referenced from the start.
INSERT INTO blob_owners (sha256, user_id, device_id, content_type, created_at)
SELECT sha256, uploaded_by, NULL, content_type, created_at FROM blobs
WHERE uploaded_by IS NOT NULL;

UPDATE blob_owners SET referenced_at = created_at
WHERE (sha256, user_id) IN (
    SELECT attachment.value, record.agent_id
    FROM sync_records AS record, json_each(record.body, '$.attachments') AS attachment
    WHERE attachment.type = 'text'
    UNION
    SELECT json_extract(record.body, '$.borrower_signature_sha256'), record.agent_id
    FROM sync_records AS record WHERE record.kind = 'agreement'
    UNION
    SELECT json_extract(record.body, '$.agent_signature_sha256'), record.agent_id
    FROM sync_records AS record WHERE record.kind = 'agreement'
);
