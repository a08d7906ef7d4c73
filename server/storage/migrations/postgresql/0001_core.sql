-- Accounts, devices and tokens; borrowers, cases and visits; the exposure ledger and the
-- staff audit log (both append-only); import runs.

-- PostgreSQL: SQLite's JSON functions the storage SQL uses, with SQLite's meaning (values as
-- text, strings unquoted), and the one function every append-only trigger calls. Integers
-- are BIGINT (SQLite's are 64-bit), INTEGER PRIMARY KEY an identity column.

CREATE FUNCTION doorstep_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE FUNCTION doorstep_json_path(path text) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN path = '$' THEN '{}'::text[]
        ELSE string_to_array(
            ltrim(regexp_replace(substr(path, 2), '\[(-?\d+)\]', '.\1', 'g'), '.'), '.')
    END
$$;

CREATE FUNCTION doorstep_json_value(v jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE jsonb_typeof(v)
        WHEN 'string' THEN v #>> '{}'
        WHEN 'null' THEN NULL
        WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN '1' ELSE '0' END
        ELSE v::text
    END
$$;

CREATE FUNCTION json_extract(doc text, path text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT doorstep_json_value(doc::jsonb #> doorstep_json_path(path))
$$;

-- The same value as JSON, for a select list: the driver hands numbers back as numbers.
CREATE FUNCTION json_extract_value(doc text, path text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT nullif(doc::jsonb #> doorstep_json_path(path), 'null'::jsonb)
$$;

CREATE FUNCTION json_valid(doc text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM doc::jsonb;
    RETURN doc IS NOT NULL;
EXCEPTION WHEN others THEN
    RETURN false;
END $$;

CREATE FUNCTION json_type(doc text, path text DEFAULT '$') RETURNS text LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE jsonb_typeof(v)
        WHEN 'string' THEN 'text'
        WHEN 'boolean' THEN v::text
        WHEN 'number' THEN CASE WHEN v::text ~ '^-?\d+$' THEN 'integer' ELSE 'real' END
        ELSE jsonb_typeof(v)
    END
    FROM (SELECT doc::jsonb #> doorstep_json_path(path) AS v) AS found
$$;

CREATE FUNCTION json_array_length(doc text, path text DEFAULT '$') RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN v IS NULL THEN NULL WHEN jsonb_typeof(v) = 'array'
        THEN jsonb_array_length(v) ELSE 0 END
    FROM (SELECT doc::jsonb #> doorstep_json_path(path) AS v) AS found
$$;

-- Over an array (the only JSON the storage SQL walks): key is the element's index.
CREATE FUNCTION json_each(doc text, path text DEFAULT '$')
RETURNS TABLE (key bigint, value text, type text) LANGUAGE sql IMMUTABLE AS $$
    SELECT a.ord - 1, doorstep_json_value(a.elem), json_type(a.elem::text)
    FROM (SELECT doc::jsonb #> doorstep_json_path(path) AS v) AS found,
        jsonb_array_elements(
            CASE WHEN jsonb_typeof(found.v) = 'array' THEN found.v ELSE '[]'::jsonb END
        ) WITH ORDINALITY AS a(elem, ord)
$$;

-- SQLite's date(time, modifier) for the one modifier the SQL uses, '+N minutes'.
CREATE FUNCTION date(moment text, modifier text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char((moment::timestamptz AT TIME ZONE 'UTC') + modifier::interval, 'YYYY-MM-DD')
$$;

-- SQLite sums and compares truth values as the integers 1 and 0.
CREATE FUNCTION doorstep_sum_truth(total bigint, value boolean) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN value IS NULL THEN total
        ELSE coalesce(total, 0) + CASE WHEN value THEN 1 ELSE 0 END END
$$;
CREATE AGGREGATE sum(boolean) (SFUNC = doorstep_sum_truth, STYPE = bigint);
CREATE FUNCTION doorstep_max_truth(best bigint, value boolean) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN value IS NULL THEN best
        ELSE greatest(coalesce(best, 0), CASE WHEN value THEN 1 ELSE 0 END) END
$$;
CREATE AGGREGATE max(boolean) (SFUNC = doorstep_max_truth, STYPE = bigint);

-- SQLite's catalogue, for the few reads of it (tables and triggers of this schema).
CREATE VIEW sqlite_master AS
SELECT 'table'::text AS type, c.relname::text AS name, c.relname::text AS tbl_name,
       NULL::text AS sql
FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
UNION ALL
SELECT 'view', c.relname::text, c.relname::text, pg_get_viewdef(c.oid)
FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'v'
  AND c.relname <> 'sqlite_master'
UNION ALL
SELECT 'trigger', t.tgname::text, c.relname::text,
       pg_get_triggerdef(t.oid) || chr(10) || p.prosrc
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal
  AND t.tgenabled <> 'D';

CREATE FUNCTION json_remove(doc text, path text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT (doc::jsonb #- doorstep_json_path(path))::text
$$;

CREATE FUNCTION json_set(doc text, path text, value text) RETURNS text LANGUAGE sql IMMUTABLE
AS $$
    SELECT jsonb_set(doc::jsonb, doorstep_json_path(path), to_jsonb(value), true)::text
$$;

CREATE TABLE users (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('agent', 'dispatcher', 'privacy_officer', 'admin')),
    display_name TEXT NOT NULL,
    active BIGINT NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE TABLE agents (
    user_id BIGINT PRIMARY KEY REFERENCES users(id),
    badge_number TEXT NOT NULL UNIQUE,
    region TEXT,
    home_lat DOUBLE PRECISION,
    home_lon DOUBLE PRECISION,
    time_zone TEXT NOT NULL
);
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    registered_at TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by BIGINT REFERENCES users(id),
    revoke_reason TEXT,
    wipe_confirmed_at TEXT,
    last_seen_at TEXT
);
CREATE INDEX devices_user ON devices(user_id);
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id),
    device_id TEXT REFERENCES devices(id),
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    revoked_at TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE TABLE login_failures (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    username TEXT NOT NULL,
    address TEXT NOT NULL,
    failed_at TEXT NOT NULL
);
CREATE INDEX login_failures_user ON login_failures(username, failed_at);
CREATE INDEX login_failures_address ON login_failures(address, failed_at);

CREATE TABLE borrowers (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    full_name TEXT NOT NULL,
    national_id TEXT,
    phones TEXT NOT NULL DEFAULT '[]',
    home_address TEXT,
    home_lat DOUBLE PRECISION,
    home_lon DOUBLE PRECISION,
    work_address TEXT,
    employer TEXT,
    date_of_birth TEXT,
    contacts TEXT NOT NULL DEFAULT '[]',
    income TEXT,
    time_zone TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE cases (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    borrower_id BIGINT NOT NULL REFERENCES borrowers(id),
    product TEXT NOT NULL,
    overdue_amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    days_past_due BIGINT NOT NULL,
    last_payment_date TEXT,
    last_payment_amount TEXT,
    hardship BIGINT NOT NULL DEFAULT 0,
    do_not_visit BIGINT NOT NULL DEFAULT 0,
    legal_hold BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    closed_at TEXT,
    content_hash TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX cases_borrower ON cases(borrower_id);

CREATE TABLE visits (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    case_id BIGINT NOT NULL REFERENCES cases(id),
    agent_id BIGINT REFERENCES users(id),
    visit_date TEXT NOT NULL,
    window_start TEXT,
    window_end TEXT,
    route_order BIGINT,
    purpose TEXT NOT NULL,
    notes TEXT,
    status TEXT NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'cancelled', 'completed')),
    notice_kind TEXT,
    notice_given_at TEXT,
    notice_note TEXT,
    cancel_reason TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    created_by BIGINT REFERENCES users(id),
    updated_by BIGINT REFERENCES users(id)
);
CREATE INDEX visits_agent_date ON visits(agent_id, visit_date, route_order);
CREATE INDEX visits_case_date ON visits(case_id, visit_date);
CREATE INDEX visits_date ON visits(visit_date);

-- Every version of every visit: who had it assigned when (audit, reconciliation).
CREATE TABLE visit_history (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    visit_id BIGINT NOT NULL REFERENCES visits(id),
    version BIGINT NOT NULL,
    agent_id BIGINT,
    visit_date TEXT NOT NULL,
    status TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    changed_by BIGINT,
    UNIQUE (visit_id, version)
);

-- What each agent's devices must learn on their next pull, in order.
CREATE TABLE agent_feed (
    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    agent_id BIGINT NOT NULL REFERENCES users(id),
    visit_id BIGINT NOT NULL REFERENCES visits(id),
    kind TEXT NOT NULL CHECK (kind IN ('upsert', 'purge')),
    reason TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX agent_feed_agent ON agent_feed(agent_id, seq);

CREATE TABLE exposure_ledger (
    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    occurred_at TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    role TEXT NOT NULL,
    device_id TEXT,
    borrower_id BIGINT NOT NULL,
    case_id BIGINT,
    visit_id BIGINT,
    fields TEXT NOT NULL,
    purpose TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    request_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX exposure_ledger_borrower ON exposure_ledger(borrower_id, occurred_at);
CREATE INDEX exposure_ledger_user ON exposure_ledger(user_id, occurred_at);
CREATE INDEX exposure_ledger_device ON exposure_ledger(device_id, occurred_at);
CREATE INDEX exposure_ledger_time ON exposure_ledger(occurred_at);

CREATE TABLE staff_audit (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    occurred_at TEXT NOT NULL,
    user_id BIGINT,
    username TEXT,
    role TEXT,
    action TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    request_id TEXT,
    address TEXT
);
CREATE INDEX staff_audit_time ON staff_audit(occurred_at);
CREATE INDEX staff_audit_action ON staff_audit(action, occurred_at);

CREATE TABLE import_runs (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    started_at TEXT NOT NULL,
    user_id BIGINT,
    source TEXT NOT NULL,
    format TEXT NOT NULL,
    total_rows BIGINT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    unchanged BIGINT NOT NULL,
    rejected BIGINT NOT NULL
);

CREATE TRIGGER exposure_ledger_no_update BEFORE UPDATE ON exposure_ledger
FOR EACH ROW EXECUTE FUNCTION doorstep_refuse('exposure_ledger is append-only');
CREATE TRIGGER exposure_ledger_no_delete BEFORE DELETE ON exposure_ledger
FOR EACH ROW EXECUTE FUNCTION doorstep_refuse('exposure_ledger is append-only');

CREATE TRIGGER staff_audit_no_update BEFORE UPDATE ON staff_audit
FOR EACH ROW EXECUTE FUNCTION doorstep_refuse('staff_audit is append-only');
CREATE TRIGGER staff_audit_no_delete BEFORE DELETE ON staff_audit
FOR EACH ROW EXECUTE FUNCTION doorstep_refuse('staff_audit is append-only');

-- PostgreSQL: TRUNCATE skips row triggers; refuse it on the append-only tables.
CREATE TRIGGER exposure_ledger_no_truncate BEFORE TRUNCATE ON exposure_ledger
FOR EACH STATEMENT EXECUTE FUNCTION doorstep_refuse('exposure_ledger is append-only');
CREATE TRIGGER staff_audit_no_truncate BEFORE TRUNCATE ON staff_audit
FOR EACH STATEMENT EXECUTE FUNCTION doorstep_refuse('staff_audit is append-only');
