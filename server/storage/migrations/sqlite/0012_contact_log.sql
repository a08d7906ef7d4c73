-- The contact log: every contact with a borrower on every channel is one entry on the case
-- (sync/contacts.py names the channels, directions and outcomes). Home-visit reports stay in
-- sync_records and join the log when it is read.
CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases(id),
    channel TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    occurred_at TEXT NOT NULL,
    -- who: a Doorstep user, or the agent name an external system (dialer, gateway) gave
    agent_id INTEGER REFERENCES users(id),
    agent_name TEXT,
    outcome TEXT NOT NULL,
    duration_s INTEGER,
    notes TEXT,
    visit_id INTEGER REFERENCES visits(id),
    -- the dialer's or gateway's id of the contact, when a source carries one
    external_ref TEXT,
    -- case | channel | direction | occurred_at to the UTC second | who: the same contact
    -- from any source (sync.contacts.natural_key)
    natural_key TEXT NOT NULL UNIQUE,
    -- the first source that logged it: api, import or sync
    source TEXT NOT NULL,
    flags TEXT NOT NULL DEFAULT '[]',
    logged_at TEXT NOT NULL,
    logged_by INTEGER REFERENCES users(id)
);
CREATE INDEX contacts_case ON contacts(case_id, occurred_at);
CREATE UNIQUE INDEX contacts_external_ref ON contacts(channel, external_ref)
    WHERE external_ref IS NOT NULL;

-- Every source that reported an entry (an API call, an import row, a synced record): one
-- contact seen by the dialer and by the agent's phone is one entry with two sources.
CREATE TABLE contact_sources (
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    source TEXT NOT NULL,
    reference TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (source, reference)
);
CREATE INDEX contact_sources_contact ON contact_sources(contact_id);
