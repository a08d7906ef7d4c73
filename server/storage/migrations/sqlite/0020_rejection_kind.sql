-- The kind a refused record was sent as (visit_report, agreement, ...), so that a phone
-- reading its refusals (WatermelonDB's record_outcomes rows) knows which of its tables the
-- refused row came from. NULL for a refusal logged before this column, and for a record
-- whose kind was not one Doorstep knows (it may be the reason it was refused).
ALTER TABLE sync_rejections ADD COLUMN kind TEXT;
