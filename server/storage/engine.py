"""PostgreSQL behind the part of the sqlite-utils API the storage modules use.

The storage modules write SQLite SQL and call `db.execute`, `db.query`, `db.conn.execute`,
`db.conn.executemany`, `db.conn.in_transaction` and `db[table].exists()/.columns`. On
PostgreSQL the same calls reach a `PgDatabase`: each statement is translated once (and
cached) by `translate`, a thin dialect layer:

- placeholders: `?` -> `%s`, `:name` -> `%(name)s`; literal `%` doubled;
- `x IN (SELECT value FROM json_each(?))`, the storage modules' idiom for a list
  parameter, -> `x = ANY(%s)` with the JSON text decoded to a Python list (`NOT IN` ->
  `<> ALL`);
- `INSERT OR IGNORE` -> `INSERT ... ON CONFLICT DO NOTHING`;
- `a IS ?` / `a IS NOT ?` -> `IS [NOT] DISTINCT FROM`; `[name]` identifiers -> `"name"`;
  the column `offset` (a PostgreSQL keyword) quoted; `CAST(x AS REAL/INTEGER/BLOB)` to
  double precision/bigint/bytea; `json_group_array(x)` -> `json_agg`; the unary `+` SQLite
  uses to keep an index out of a plan dropped;
- `cursor.lastrowid` after an INSERT into a table with an identity key: `RETURNING` it.

The JSON functions the SQL uses (json_extract, json_each, json_valid, json_type, ...) are
SQL functions of the PostgreSQL schema with SQLite's meaning (migration 0001 of
migrations/postgresql/). Values go to the server as literals (psycopg's client-side
binding), so an untyped string takes the type its column asks for, as in SQLite; booleans
are sent as 1/0 (the schema stores flags as integers) and numeric results come back as int
or float, as SQLite gives them.

Transactions mirror SQLite's: the connection is in autocommit; `BEGIN IMMEDIATE` (every
write transaction, server/storage/connection.transaction) is `BEGIN` plus a transaction
advisory lock every writer of the store takes (keyed by database and schema, see
advisory_key), so write transactions run one at a time across every app server exactly as
they do on one SQLite file, and every read-then-write rule keeps its
meaning; a plain `BEGIN` (a read snapshot) is REPEATABLE READ. Errors surface as the
sqlite3 exceptions the code already handles (IntegrityError for constraints and the
append-only triggers, OperationalError for the rest).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# The lock named by advisory_key for write transactions (job locks use the job's name).
WRITE_LOCK = "write"


def advisory_key(database: str, schema: str, lock: str) -> int:
    """The advisory-lock key of one of a store's locks (WRITE_LOCK, or a maintenance job's
    name). PostgreSQL's advisory locks are per database, and a store is one schema of one
    database: the key is a hash of all three, so two stores in different schemas of one
    database never wait for each other, while every connection of every app server to the
    same store computes the same key. A signed 64-bit integer, as pg_advisory_lock takes."""
    digest = hashlib.blake2b(f"{database}\0{schema}\0{lock}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def is_postgres(target: str | None) -> bool:
    """Whether a DATABASE setting names a PostgreSQL server rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


# --- Translation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Translated:
    sql: str
    array_positions: frozenset[int]
    array_names: frozenset[str]
    insert_table: str | None
    has_returning: bool


_ARRAY_IN = re.compile(
    r"(\bNOT\s+)?\bIN\s*\(\s*SELECT\s+value\s+FROM\s+json_each\(\s*(\?|:\w+)\s*\)\s*\)",
    re.IGNORECASE,
)
_INSERT_OR_IGNORE = re.compile(r"\bINSERT\s+OR\s+IGNORE\s+INTO\b", re.IGNORECASE)
_INSERT_TABLE = re.compile(r"^\s*INSERT\s+INTO\s+\"?(\w+)\"?", re.IGNORECASE)
_IS_VALUE = re.compile(
    r"\bIS\s+(NOT\s+)?(?!(?:NULL|TRUE|FALSE|DISTINCT|UNKNOWN|NOT)\b)(?=[\w%(:])",
    re.IGNORECASE,
)
_BARE_JOIN = re.compile(
    r"(?<!CROSS )\bJOIN\s+(json_each\([^()]*\)\s+(?:AS\s+)?\w+)(?!\s+ON\b)", re.IGNORECASE
)
_CASTS = {"REAL": "double precision", "INTEGER": "bigint", "BLOB": "bytea"}
_CAST = re.compile(r"\bAS\s+(REAL|INTEGER|BLOB)\s*\)", re.IGNORECASE)
_GROUP_ARRAY = re.compile(r"\bjson_group_array\(([^()]*)\)", re.IGNORECASE)
# json_extract(...) AS name in a select list: the value goes back to Python, typed as SQLite
# types it (numbers as numbers), so PostgreSQL hands back the JSON value itself.
_SELECTED_JSON = re.compile(
    r"\bjson_extract\(([^()]*)\)(\s+AS\s+(?!(?:REAL|INTEGER|TEXT|BLOB|double|bigint|bytea)\b)\w+)",
    re.IGNORECASE,
)
_UNARY_PLUS = re.compile(r"(?<=[\s(])\+(?=[a-z_])")
_OFFSET_COLUMN = re.compile(r"\boffset\b")  # lower case: the column; OFFSET the keyword
_ROWID = re.compile(r"(?<!AS )\browid\b")
_ROWID_SELECTED = re.compile(r"(\bSELECT\s+)rowid\b", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_ARRAY_MARK = "\x02"
_MIN_MAX = re.compile(r"\b(min|max)\(", re.IGNORECASE)
_UPSERT = re.compile(
    r"^\s*INSERT\s+INTO\s+\"?(\w+)\"?\s*\(([^)]*)\).*?\bDO\s+UPDATE\s+SET\b",
    re.IGNORECASE | re.DOTALL,
)
_DROP_TRIGGER = re.compile(r"^\s*DROP\s+TRIGGER\s+(IF\s+EXISTS\s+)?(\w+)\s*;?\s*$", re.I)


_SUBQUERY_FROM = re.compile(r"\bFROM\s*\(\s*SELECT\b", re.IGNORECASE)
_NEEDS_ALIAS = re.compile(
    r"\s*(?:$|\)|,|WHERE\b|GROUP\b|ORDER\b|LIMIT\b|UNION\b|JOIN\b|LEFT\b|INNER\b|CROSS\b|"
    r"HAVING\b|EXCEPT\b|INTERSECT\b)",
    re.IGNORECASE,
)


def _alias_subqueries(text: str) -> str:
    """SQLite lets a subquery in FROM go unnamed; PostgreSQL 15 wants a name."""
    inserts = []
    for match in _SUBQUERY_FROM.finditer(text):
        i = text.index("(", match.start())
        depth = 0
        while i < len(text):
            if text[i] == "(":
                depth += 1
            elif text[i] == ")":
                depth -= 1
                if depth == 0:
                    break
            elif text[i] == "'":
                i = text.index("'", i + 1)
            i += 1
        if _NEEDS_ALIAS.match(text, i + 1):
            inserts.append(i + 1)
    for n, at in enumerate(reversed(inserts)):
        text = f"{text[:at]} AS doorstep_sub{n}{text[at:]}"
    return text


def _scalar_min_max(text: str) -> str:
    """SQLite's two-argument min(a, b)/max(a, b) are PostgreSQL's least/greatest."""
    out, last = [], 0
    for match in _MIN_MAX.finditer(text):
        start = match.end()
        depth, commas, i = 1, 0, start
        while i < len(text) and depth:
            c = text[i]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            elif c == "," and depth == 1:
                commas += 1
            elif c == "'":
                i = text.index("'", i + 1)
            i += 1
        if commas:
            name = "greatest" if match[1].lower() == "max" else "least"
            out.append(text[last : match.start()] + f"{name}(")
            last = start
    out.append(text[last:])
    return "".join(out)


def _qualify_upsert(text: str) -> str:
    """In ON CONFLICT DO UPDATE, SQLite reads a bare column as the stored row's; PostgreSQL
    wants it named: qualify the inserted columns with the table (not assignment targets)."""
    match = _UPSERT.match(text)
    if not match:
        return text
    table = match[1]
    columns = [c.strip().strip('"') for c in match[2].split(",") if c.strip()]
    head, tail = text[: match.end()], text[match.end() :]
    pattern = re.compile(
        r"(?<![.\w])(?<!%\()(?<!SET )\b(" + "|".join(map(re.escape, columns)) + r")\b(?!\s*\()"
    )
    target = re.compile(r"(^|,)(\s*)(\w+)(\s*=)(?!=)")

    def qualify_part(part: str) -> str:
        # An assignment "col = expr": keep the target, qualify the expression.
        found = target.match(part)
        if found:
            keep = part[: found.end()]
            return keep + pattern.sub(lambda m: f"{table}.{m[1]}", part[found.end() :])
        return pattern.sub(lambda m: f"{table}.{m[1]}", part)

    # Split the SET list at top-level commas.
    parts, depth, current = [], 0, []
    for c in tail:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(current))
            current = [","]
            continue
        current.append(c)
    parts.append("".join(current))
    return head + "".join(qualify_part(p) for p in parts)


def _mark_array(match: re.Match[str]) -> str:
    operator = "<> ALL" if match[1] else "= ANY"
    return f"{operator}({_ARRAY_MARK}{match[2]})"


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> Translated:
    """SQLite SQL as the storage modules write it, in PostgreSQL's dialect."""
    sql = _ARRAY_IN.sub(_mark_array, sql)
    out: list[str] = []
    positions: set[int] = set()
    names: set[str] = set()
    position = 0
    array_next = False
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "'" or c == '"':
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i : j + 1].replace("%", "%%"))
            i = j + 1
        elif c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j].replace("%", "%%"))
            i = j
        elif c == "[":
            j = sql.index("]", i)
            out.append(f'"{sql[i + 1 : j]}"')
            i = j + 1
        elif c == "?":
            out.append("%s")
            if array_next:
                positions.add(position)
                array_next = False
            position += 1
            i += 1
        elif c == ":" and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_"):
            if i > 0 and sql[i - 1] == ":":  # a PostgreSQL cast (::type)
                out.append(c)
                i += 1
                continue
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] == "_"):
                j += 1
            name = sql[i + 1 : j]
            out.append(f"%({name})s")
            if array_next:
                names.add(name)
                array_next = False
            i = j
        elif c == "%":
            out.append("%%")
            i += 1
        elif c == _ARRAY_MARK:
            array_next = True
            i += 1
        else:
            out.append(c)
            i += 1
    text = "".join(out)
    text = _BARE_JOIN.sub(r"CROSS JOIN \1", text)
    text = _SELECTED_JSON.sub(r"json_extract_value(\1)\2", text)
    text = _IS_VALUE.sub(lambda m: "IS DISTINCT FROM " if m[1] else "IS NOT DISTINCT FROM ", text)
    text = _CAST.sub(lambda m: f"AS {_CASTS[m[1].upper()]})", text)
    text = _GROUP_ARRAY.sub(r"coalesce(json_agg(\1)::text, '[]')", text)
    text = _UNARY_PLUS.sub("", text)
    text = _scalar_min_max(text)
    text = _alias_subqueries(text)
    text = _qualify_upsert(text)
    text = _OFFSET_COLUMN.sub('"offset"', text)
    # SQLite's rowid: the row's physical address, which orders the append-only tables that
    # ask for it by insertion (they are never updated) and finds a blob again.
    text = _ROWID_SELECTED.sub(r"\1ctid AS rowid", text)
    text = _ROWID.sub("ctid", text)
    has_returning = bool(_RETURNING.search(text))
    if _INSERT_OR_IGNORE.search(text):
        text = _INSERT_OR_IGNORE.sub("INSERT INTO", text)
        found = _RETURNING.search(text)
        if found:
            text = f"{text[: found.start()]}ON CONFLICT DO NOTHING {text[found.start() :]}"
        else:
            text = f"{text.rstrip().rstrip(';')} ON CONFLICT DO NOTHING"
    table = _INSERT_TABLE.match(text)
    return Translated(
        sql=text,
        array_positions=frozenset(positions),
        array_names=frozenset(names),
        insert_table=table[1] if table else None,
        has_returning=has_returning,
    )


def _bind(translated: Translated, params: Any) -> Any:
    """The parameters with the JSON list parameters decoded for `= ANY(...)`, and NUL
    characters (which PostgreSQL text cannot hold) as U+FFFD."""
    if params is None:
        return None
    if isinstance(params, Mapping):
        bound = {k: _no_nul(v) for k, v in params.items()}
        for name in translated.array_names:
            bound[name] = _as_list(bound[name])
        return bound
    bound_list = [_no_nul(v) for v in params]
    for position in translated.array_positions:
        bound_list[position] = _as_list(bound_list[position])
    return bound_list


def _no_nul(value: Any) -> Any:
    if value.__class__ is str and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, (str, bytes)):
        value = json.loads(value)
    return list(value)


# --- Errors ----------------------------------------------------------------------------


def _sqlite_error(error: Exception) -> sqlite3.Error:
    """The sqlite3 exception the storage callers already handle for a psycopg error."""
    import psycopg

    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, psycopg.errors.IntegrityError | psycopg.errors.RaiseException):
        return sqlite3.IntegrityError(message)
    if isinstance(error, psycopg.errors.DataError):
        return sqlite3.DataError(message)
    return sqlite3.OperationalError(message)


# --- Cursors and connections -----------------------------------------------------------


class PgCursor:
    """The DB-API surface the storage modules read from a sqlite3 cursor."""

    __slots__ = ("_cursor", "lastrowid", "_pending")

    def __init__(self, cursor: Any, lastrowid: int | None = None, pending: list | None = None):
        self._cursor = cursor
        self.lastrowid = lastrowid
        self._pending = pending

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def description(self) -> Any:
        return self._cursor.description

    def fetchone(self) -> tuple | None:
        if self._pending is not None:
            return self._pending.pop(0) if self._pending else None
        if self._cursor.description is None:
            return None
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple]:
        if self._pending is not None:
            rows, self._pending = self._pending, []
            return rows
        if self._cursor.description is None:
            return []
        return self._cursor.fetchall()

    def fetchmany(self, size: int = 1) -> list[tuple]:
        if self._pending is not None:
            rows, self._pending = self._pending[:size], self._pending[size:]
            return rows
        if self._cursor.description is None:
            return []
        return self._cursor.fetchmany(size)

    def __iter__(self) -> Iterator[tuple]:
        if self._pending is not None:
            rows, self._pending = self._pending, []
            return iter(rows)
        if self._cursor.description is None:
            return iter(())
        return iter(self._cursor)

    def close(self) -> None:
        self._cursor.close()


class PgConnection:
    """What `db.conn` is on PostgreSQL: sqlite3.Connection's calls the storage code makes."""

    dialect = "postgresql"

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self._identity_keys: dict[str, str | None] = {}
        database, schema = raw.execute("SELECT current_database(), current_schema()").fetchone()
        # Where this connection's store lives: its advisory locks are keyed by it.
        self.store_name = (database, schema or "")
        self.write_lock_key = self.lock_key(WRITE_LOCK)
        # Set by a retention purge (storage/retention.certificates_honoured): the check of a
        # purge certificate's signature, run in the server before the gate opens.
        self.certifier: Any = None

    def lock_key(self, lock: str) -> int:
        """The advisory-lock key of one of this store's locks (see advisory_key)."""
        return advisory_key(*self.store_name, lock)

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def execute(self, sql: str, params: Any = None) -> PgCursor:
        head = sql.lstrip()[:20].upper()
        if head.startswith("BEGIN"):
            return self._begin(head)
        if head.startswith("PRAGMA"):
            return PgCursor(self.raw.cursor(), pending=[])
        dropped = _DROP_TRIGGER.match(sql)
        if dropped:  # SQLite names a trigger alone; PostgreSQL with its table
            sql = self._drop_trigger(dropped[2], bool(dropped[1]))
        translated = translate(sql)
        want_id = False
        text = translated.sql
        if translated.insert_table and not translated.has_returning:
            key = self._identity_key(translated.insert_table)
            if key is not None:
                text = f"{text} RETURNING {key}"
                want_id = True
        cursor = self.raw.cursor()
        try:
            cursor.execute(text, _bind(translated, params))
        except Exception as error:
            if _is_psycopg_error(error):
                raise _sqlite_error(error) from error
            raise
        if want_id:
            rows = cursor.fetchall()
            return PgCursor(cursor, lastrowid=rows[-1][0] if rows else None, pending=[])
        return PgCursor(cursor)

    def executemany(self, sql: str, seq_of_params: Iterable[Any]) -> PgCursor:
        translated = translate(sql)
        batch = [_bind(translated, params) for params in seq_of_params]
        cursor = self.raw.cursor()
        if not batch:
            return PgCursor(cursor, pending=[])
        try:
            cursor.executemany(translated.sql, batch)
        except Exception as error:
            if _is_psycopg_error(error):
                raise _sqlite_error(error) from error
            raise
        return PgCursor(cursor, pending=[])

    def _begin(self, head: str) -> PgCursor:
        cursor = self.raw.cursor()
        if "IMMEDIATE" in head or "EXCLUSIVE" in head:
            cursor.execute("BEGIN")
            try:
                cursor.execute(f"SELECT pg_advisory_xact_lock({self.write_lock_key})")
            except Exception as error:
                self.raw.execute("ROLLBACK")
                if _is_psycopg_error(error):
                    raise _sqlite_error(error) from error
                raise
        else:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        return PgCursor(cursor, pending=[])

    def _drop_trigger(self, name: str, if_exists: bool) -> str:
        row = self.raw.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = %s AND c.relnamespace = current_schema()::regnamespace",
            [name],
        ).fetchone()
        if row is None:
            return "SELECT 1" if if_exists else f"DROP TRIGGER {name} ON missing_table"
        return f'DROP TRIGGER {name} ON "{row[0]}"'

    def _identity_key(self, table: str) -> str | None:
        if table not in self._identity_keys:
            row = self.raw.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s "
                "AND is_identity = 'YES'",
                [table],
            ).fetchone()
            self._identity_keys[table] = row[0] if row else None
        return self._identity_keys[table]

    def commit(self) -> None:
        if self.in_transaction:
            self.raw.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.raw.execute("ROLLBACK")

    def close(self) -> None:
        self.raw.close()

    def blobopen(self, table: str, column: str, row: Any, readonly: bool = True) -> _BlobReader:
        """sqlite3's incremental blob reader: the value read in slices, never all at once."""
        return _BlobReader(self, table, column, row)

    def iterdump(self) -> Iterator[str]:
        """Every row of every table of the schema as text (what a test searches the whole
        store with, as sqlite3's iterdump)."""
        tables = self.raw.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall()
        for (table,) in tables:
            for (line,) in self.raw.execute(f'SELECT t::text FROM "{table}" t'):
                yield f"{table}: {line}"

    def create_function(self, *_args: Any, **_kwargs: Any) -> None:
        """SQL functions are part of the PostgreSQL schema; nothing to register."""


class _BlobReader:
    def __init__(self, conn: PgConnection, table: str, column: str, row: Any) -> None:
        self._sql = f'SELECT substring("{column}" FROM %s FOR %s) FROM "{table}" WHERE ctid = %s'
        self._conn = conn
        self._row = row
        self._offset = 0

    def __enter__(self) -> _BlobReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def read(self, size: int) -> bytes:
        found = self._conn.raw.execute(self._sql, [self._offset + 1, size, self._row]).fetchone()
        chunk = bytes(found[0]) if found and found[0] is not None else b""
        self._offset += len(chunk)
        return chunk


def _is_psycopg_error(error: Exception) -> bool:
    import psycopg

    return isinstance(error, psycopg.Error)


@dataclass(frozen=True)
class _Column:
    name: str
    type: str


class PgTable:
    """db[table]: the few sqlite-utils Table calls storage and tests make."""

    def __init__(self, db: PgDatabase, name: str) -> None:
        self.db = db
        self.name = name

    def exists(self) -> bool:
        row = self.db.conn.raw.execute(
            "SELECT 1 FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = %s",
            [self.name],
        ).fetchone()
        return row is not None

    @property
    def columns(self) -> list[_Column]:
        rows = self.db.conn.raw.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
            [self.name],
        ).fetchall()
        return [_Column(name, kind) for name, kind in rows]

    last_pk: Any = None

    def insert(self, row: Mapping[str, Any]) -> PgTable:
        return self.insert_all([row])

    def insert_all(self, rows: Iterable[Mapping[str, Any]]) -> PgTable:
        for row in rows:
            columns = list(row)
            sql = (
                f'INSERT INTO "{self.name}" ({", ".join(columns)}) '
                f"VALUES ({', '.join('?' * len(columns))})"
            )
            self.last_pk = self.db.execute(sql, [row[c] for c in columns]).lastrowid
        return self


class PgDatabase:
    """The sqlite_utils.Database subset, over one psycopg connection."""

    dialect = "postgresql"

    def __init__(self, conn: PgConnection, url: str) -> None:
        self.conn = conn
        self.url = url

    def execute(self, sql: str, params: Any = None) -> PgCursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, seq_of_params: Iterable[Any]) -> PgCursor:
        return self.conn.executemany(sql, seq_of_params)

    def query(self, sql: str, params: Any = None) -> Iterator[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        if cursor.description is None:
            return
        keys = [d[0] for d in cursor.description]
        for row in cursor:
            yield dict(zip(keys, row, strict=True))

    def __getitem__(self, table: str) -> PgTable:
        return PgTable(self, table)

    def table_names(self) -> list[str]:
        rows = self.conn.raw.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        self.conn.close()


def dialect(db: Any) -> str:
    """'postgresql' or 'sqlite' for a store handle of either kind."""
    return getattr(db, "dialect", "sqlite")


# --- Opening -------------------------------------------------------------------------------


def _adapters(raw: Any) -> None:
    """Booleans as 1/0, numeric results as int or float: the values SQLite gives."""
    from psycopg.adapt import Dumper, Loader
    from psycopg.postgres import types

    class BoolAsInt(Dumper):
        oid = types["int8"].oid

        def dump(self, obj: bool) -> bytes:
            return b"1" if obj else b"0"

        def quote(self, obj: bool) -> bytes:
            return b"1" if obj else b"0"

    class NumericAsNumber(Loader):
        def load(self, data: Any) -> int | float:
            text = bytes(data).decode()
            if "." in text or "e" in text or "E" in text or "N" in text:
                return float(text)
            return int(text)

    class BoolAsIntLoader(Loader):
        def load(self, data: Any) -> int:
            return 1 if bytes(data) == b"t" else 0

    raw.adapters.register_dumper(bool, BoolAsInt)
    raw.adapters.register_loader("numeric", NumericAsNumber)
    raw.adapters.register_loader("bool", BoolAsIntLoader)


def open_pg(url: str) -> PgDatabase:
    """A PostgreSQL connection with the settings every Doorstep connection must have."""
    import psycopg

    try:
        raw = psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor)
    except psycopg.Error as error:
        raise _sqlite_error(error) from error
    _adapters(raw)
    # A commit is acknowledged only once it is durable (and, with synchronous standbys
    # configured on the server, replicated): acknowledged means committed.
    raw.execute("SET synchronous_commit = on")
    # A writer waits for the write lock at most this long, like SQLite's busy timeout.
    raw.execute("SET lock_timeout = '10s'")
    raw.execute("SET TIME ZONE 'UTC'")
    return PgDatabase(PgConnection(raw), url)


def settings(db: PgDatabase) -> dict[str, object]:
    """What /ready reports about the store."""
    raw = db.conn.raw
    return {
        "engine": "postgresql",
        "server_version": raw.execute("SHOW server_version").fetchone()[0],
        "synchronous_commit": raw.execute("SHOW synchronous_commit").fetchone()[0],
        "fsync": raw.execute("SHOW fsync").fetchone()[0],
        "lock_timeout": raw.execute("SHOW lock_timeout").fetchone()[0],
    }


def integrity_check(db: PgDatabase) -> list[str]:
    """What PRAGMA integrity_check is on SQLite: ["ok"], or one line per problem found.

    Every valid B-tree index of the store's schema is checked with amcheck's
    bt_index_check, heap included (each table row is in the index), when the extension is
    installed or can be created (in `public`, once per database). Without amcheck, every
    unique index over plain columns is checked for duplicates by reading the tables
    themselves (no index scans), and the result says amcheck was missing."""
    import psycopg

    raw = db.conn.raw
    schema = _amcheck_schema(raw)
    problems: list[str] = []
    if schema is None:
        for table, columns in _unique_columns(raw):
            raw.execute("BEGIN")
            try:
                for setting in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
                    raw.execute(f"SET LOCAL {setting} = off")
                listed = ", ".join(f'"{c}"' for c in columns)
                found = raw.execute(
                    f'SELECT count(*) FROM (SELECT 1 FROM "{table}" WHERE ({listed}) IS NOT NULL '
                    f"GROUP BY {listed} HAVING count(*) > 1) AS twice"
                ).fetchone()[0]
            finally:
                raw.execute("ROLLBACK")
            if found:
                problems.append(f"{table}({listed}): {found} duplicated values")
        return problems or ["ok (amcheck not available: unique values checked)"]
    indexes = raw.execute(
        "SELECT c.oid, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_am a ON a.oid = c.relam WHERE c.relnamespace = current_schema()::regnamespace "
        "AND a.amname = 'btree' AND i.indisvalid ORDER BY c.relname"
    ).fetchall()
    for oid, name in indexes:
        try:
            raw.execute(f'SELECT "{schema}".bt_index_check(%s::oid, true)', [oid])
        except psycopg.Error as error:
            problems.append(f"{name}: {error}".strip())
    return problems or ["ok"]


def _amcheck_schema(raw: Any) -> str | None:
    """The schema amcheck is installed in, installing it in `public` if it can."""
    import psycopg

    query = "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'amcheck'"
    found = raw.execute(query).fetchone()
    if found is None:
        # Not available, no right to create it, or another session just did: read again.
        with contextlib.suppress(psycopg.Error):
            raw.execute("CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA public")
        found = raw.execute(query).fetchone()
    return found[0] if found else None


def _unique_columns(raw: Any) -> list[tuple[str, list[str]]]:
    """(table, columns) of every unique index over plain columns in the store's schema."""
    rows = raw.execute(
        "SELECT t.relname, array_agg(a.attname ORDER BY k.ord) "
        "FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
        "CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
        "WHERE t.relnamespace = current_schema()::regnamespace AND i.indisunique "
        "AND i.indexprs IS NULL AND i.indpred IS NULL GROUP BY i.indexrelid, t.relname"
    ).fetchall()
    return [(table, list(columns)) for table, columns in rows]


@contextmanager
def job_lock(db: Any, job: str) -> Iterator[bool]:
    """Run a maintenance job (checkpoint, close-day, retention purge) on one node at a time:
    yields True to the node that holds the job's advisory lock, False (at once, no waiting)
    to the others, which skip the run. On SQLite (one node) always True."""
    mine = try_job_lock(db, job)
    try:
        yield mine
    finally:
        if mine:
            release_job_lock(db, job)


def try_job_lock(db: Any, job: str) -> bool:
    """Take the session-level advisory lock of a maintenance job on PostgreSQL, without
    waiting: True if this node runs the job now, False if another node is running it.
    On SQLite (one node) always True."""
    if dialect(db) != "postgresql":
        return True
    key = db.conn.lock_key(f"job:{job}")
    row = db.conn.raw.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
    return bool(row[0])


def release_job_lock(db: Any, job: str) -> None:
    """Release the lock try_job_lock took (PostgreSQL; nothing to do on SQLite)."""
    if dialect(db) == "postgresql":
        db.conn.raw.execute("SELECT pg_advisory_unlock(%s)", [db.conn.lock_key(f"job:{job}")])


def split_statements(text: str) -> list[str]:
    """The statements of a PostgreSQL migration file: split on `;` outside quotes,
    comments and $$-quoted function bodies."""
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == "'":
            j = i + 1
            while j < n and not (text[j] == "'" and not text.startswith("''", j)):
                j += 2 if text.startswith("''", j) else 1
            current.append(text[i : j + 1])
            i = j + 1
            continue
        if c == "$" and text.startswith("$$", i):
            j = text.index("$$", i + 2)
            current.append(text[i : j + 2])
            i = j + 2
            continue
        if c == ";":
            statement = "".join(current).strip()
            if statement:
                statements.append(statement)
            current = []
            i += 1
            continue
        current.append(c)
        i += 1
    if "".join(current).strip():
        raise ValueError(f"ends inside a statement: {''.join(current).strip()[:60]}")
    return statements


def run_script(db: PgDatabase, statements: Sequence[str]) -> None:
    """Run migration statements as written (PostgreSQL SQL, no translation)."""
    for statement in statements:
        try:
            db.conn.raw.execute(statement)
        except Exception as error:
            if _is_psycopg_error(error):
                raise _sqlite_error(error) from error
            raise
