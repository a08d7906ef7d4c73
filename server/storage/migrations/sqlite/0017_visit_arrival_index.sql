-- The frequency rules read a case's home visit reports that arrived within the policy's
-- period of the pushed batch (storage/sync.records_for_cases). Indexing the reports'
-- arrival by case lets that read skip the case's older reports, so a push costs the same
-- however long the case's history grows. The expression must stay exactly the one the
-- query uses for SQLite to pick this index.
CREATE INDEX sync_records_case_arrival
    ON sync_records(case_id, json_extract(body, '$.arrived_at'))
    WHERE kind = 'visit_report';
