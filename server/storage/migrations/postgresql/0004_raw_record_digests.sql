-- A digest of the record exactly as the device sent it, so a replayed batch is answered
-- without validating and reconciling it again. Never set for a body with typed ID characters.

ALTER TABLE sync_records ADD COLUMN raw_digest TEXT;
