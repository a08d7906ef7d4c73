"""The PostgreSQL dialect layer: what each SQLite idiom of the storage modules becomes, and
the two migration sets in step."""

from __future__ import annotations

from server.storage.engine import split_statements, translate
from server.storage.migrations import MIGRATIONS, POSTGRESQL_MIGRATIONS


def test_both_engines_have_the_same_numbered_steps():
    assert [(m.version, m.name) for m in POSTGRESQL_MIGRATIONS] == [
        (m.version, m.name) for m in MIGRATIONS
    ]
    assert all(m.hook is None for m in POSTGRESQL_MIGRATIONS)


def test_placeholders_and_list_parameters():
    found = translate("SELECT * FROM cases WHERE id IN (SELECT value FROM json_each(?)) AND x = ?")
    assert found.sql == "SELECT * FROM cases WHERE id = ANY(%s) AND x = %s"
    assert found.array_positions == frozenset({0})
    named = translate("DELETE FROM t WHERE k NOT IN (SELECT value FROM json_each(:keep))")
    assert named.sql == "DELETE FROM t WHERE k <> ALL(%(keep)s)"
    assert named.array_names == frozenset({"keep"})


def test_strings_keep_their_question_marks_colons_and_percent_signs():
    found = translate("SELECT '?:x 100%' AS a, b::text FROM t WHERE c LIKE 'a%' AND d = :d")
    assert found.sql == "SELECT '?:x 100%%' AS a, b::text FROM t WHERE c LIKE 'a%%' AND d = %(d)s"


def test_insert_or_ignore_and_upserts_read_the_stored_row():
    assert translate("INSERT OR IGNORE INTO a (x) VALUES (?)").sql == (
        "INSERT INTO a (x) VALUES (%s) ON CONFLICT DO NOTHING"
    )
    upsert = translate(
        "INSERT INTO s (k, n) VALUES (:k, :n) ON CONFLICT (k) DO UPDATE SET "
        "n = MAX(COALESCE(n, 0), :n), k = excluded.k"
    ).sql
    assert upsert.endswith("DO UPDATE SET n = greatest(COALESCE(s.n, 0), %(n)s), k = excluded.k")


def test_is_between_values_unnamed_subqueries_and_bare_joins():
    found = translate(
        "SELECT count(*) FROM (SELECT 1 FROM r JOIN json_each(r.o, '$.f') f "
        "WHERE a IS NOT b AND c IS ? AND d IS NOT NULL)"
    ).sql
    assert "CROSS JOIN json_each(r.o, '$.f') f" in found
    assert "a IS DISTINCT FROM b AND c IS NOT DISTINCT FROM %s AND d IS NOT NULL" in found
    assert found.endswith(") AS doorstep_sub0")


def test_statements_split_outside_function_bodies():
    text = (
        "CREATE TABLE a (x TEXT DEFAULT ';');\n-- a comment; with a semicolon\n"
        "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;"
    )
    assert len(split_statements(text)) == 2
