-- The per-agent feed of version 1 was never read: pulls are built from visits, device_cards
-- and sync_records. Its index goes with it.

DROP TABLE agent_feed;
