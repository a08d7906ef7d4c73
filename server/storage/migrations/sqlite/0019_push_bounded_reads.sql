-- A push reads only what its own batch can change, however long the store's history grows
-- (docs/sync.md, "Performance: push and memory"). The expressions must stay exactly the
-- ones the queries use for the planner to pick these indexes.

-- A visit's latest report, and the reports near it, by arrival (storage/sync.
-- visit_report_summaries and latest_reports, for services/visit_outcomes.apply_reports).
CREATE INDEX sync_records_visit_arrival
    ON sync_records(visit_id, json_extract(body, '$.arrived_at'))
    WHERE kind = 'visit_report';

-- How many reports a visit has, counted from the index alone (it was visit_id only).
DROP INDEX sync_records_visit;
CREATE INDEX sync_records_visit ON sync_records(visit_id, kind);

-- Whether any of a visit's reports completed it, found without reading the others.
CREATE INDEX sync_records_visit_outcome
    ON sync_records(visit_id, json_extract(body, '$.outcome'))
    WHERE kind = 'visit_report';

-- Who has held a visit (storage/sync.visit_history_agents), from the index alone.
CREATE INDEX visit_history_visit_agent ON visit_history(visit_id, agent_id);

-- The contact log as the push's rules read it (services/contact_compliance.
-- rule_logs_of_cases): a case's calls within the rules' period of the batch, and its
-- written notices, each without reading the rest of the case's log.
CREATE INDEX contacts_case_channel ON contacts(case_id, channel, occurred_at);
