-- pg_restore runs every statement with an empty search_path. The index
-- sync_records_case_arrival (0017) calls json_extract, whose body called
-- doorstep_json_value and doorstep_json_path by bare name: restoring a dump failed on that
-- index. The JSON functions now name the schema they live in when they call each other, so
-- they resolve under any search_path (pg_restore's, a maintenance session's). Naming the
-- schema in the body, rather than a SET search_path clause, keeps them inlinable: the
-- planner still sees through json_extract and matches the index. Same signatures, same
-- results: the index needs no rebuild. A store moved to another schema name must run this
-- step's statements again (docs/deployment.md).
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$s.json_extract(doc text, path text) RETURNS text
        LANGUAGE sql IMMUTABLE AS 'SELECT %1$s.doorstep_json_value(
            doc::jsonb #> %1$s.doorstep_json_path(path))'
    $f$, s);
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$s.json_extract_value(doc text, path text) RETURNS jsonb
        LANGUAGE sql IMMUTABLE AS 'SELECT nullif(
            doc::jsonb #> %1$s.doorstep_json_path(path), ''null''::jsonb)'
    $f$, s);
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$s.json_type(doc text, path text DEFAULT '$')
        RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT CASE jsonb_typeof(v)
            WHEN ''string'' THEN ''text''
            WHEN ''boolean'' THEN v::text
            WHEN ''number'' THEN CASE WHEN v::text ~ ''^-?\d+$'' THEN ''integer''
                ELSE ''real'' END
            ELSE jsonb_typeof(v)
        END
        FROM (SELECT doc::jsonb #> %1$s.doorstep_json_path(path) AS v) AS found'
    $f$, s);
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$s.json_array_length(doc text, path text DEFAULT '$')
        RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT CASE WHEN v IS NULL THEN NULL
            WHEN jsonb_typeof(v) = ''array'' THEN jsonb_array_length(v) ELSE 0 END
        FROM (SELECT doc::jsonb #> %1$s.doorstep_json_path(path) AS v) AS found'
    $f$, s);
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$s.json_each(doc text, path text DEFAULT '$')
        RETURNS TABLE (key bigint, value text, type text) LANGUAGE sql IMMUTABLE AS
        'SELECT a.ord - 1, %1$s.doorstep_json_value(a.elem), %1$s.json_type(a.elem::text)
        FROM (SELECT doc::jsonb #> %1$s.doorstep_json_path(path) AS v) AS found,
            jsonb_array_elements(
                CASE WHEN jsonb_typeof(found.v) = ''array'' THEN found.v ELSE ''[]''::jsonb END
            ) WITH ORDINALITY AS a(elem, ord)'
    $f$, s);
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$s.json_remove(doc text, path text) RETURNS text
        LANGUAGE sql IMMUTABLE AS
        'SELECT (doc::jsonb #- %1$s.doorstep_json_path(path))::text'
    $f$, s);
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$s.json_set(doc text, path text, value text)
        RETURNS text LANGUAGE sql IMMUTABLE AS
        'SELECT jsonb_set(doc::jsonb, %1$s.doorstep_json_path(path), to_jsonb(value), true)::text'
    $f$, s);
END $$;
