"""Exposure ledger rows: append in one statement, read in seq order, filter for audits;
signed checkpoints and the anchor the chain starts from once old entries were removed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlite_utils

from server.domain.ledger import GENESIS_HASH, HASHED_COLUMNS, canonical_json, chain
from server.storage.engine import dialect
from server.storage.flag_reviews import CONTACT_PREFIX, contact_entry_id
from server.storage.retention import retention_gate

_INSERT = (
    "INSERT INTO exposure_ledger (seq, occurred_at, user_id, role, device_id, borrower_id, "
    "case_id, visit_id, fields, purpose, endpoint, request_id, outcome, prev_hash, hash) "
    "VALUES (:seq, :occurred_at, :user_id, :role, :device_id, :borrower_id, :case_id, "
    ":visit_id, :fields, :purpose, :endpoint, :request_id, :outcome, :prev_hash, :hash)"
)
# SQLite's json_array spells values exactly as the domain's compact JSON does, so the hot
# loop of verification only hashes bytes; the domain re-checks any mismatch itself.
_RENDERED = (
    f"SELECT seq, CAST(json_array({', '.join(HASHED_COLUMNS)}) AS BLOB), prev_hash, hash "
    "FROM exposure_ledger WHERE seq > ? AND seq <= ? ORDER BY seq"
)
_NO_END = 2**63 - 1


def head(db: sqlite_utils.Database) -> tuple[int, str]:
    """The last entry's (seq, hash); the anchor's when retention removed every entry."""
    row = db.execute("SELECT seq, hash FROM exposure_ledger ORDER BY seq DESC LIMIT 1").fetchone()
    if row:
        return row[0], row[1]
    start = anchor(db)
    return (start["start_seq"], start["start_hash"]) if start else (0, GENESIS_HASH)


def append(db: sqlite_utils.Database, entries: list[dict[str, Any]]) -> None:
    """Chain and insert entries; the caller holds the write transaction."""
    if not entries:
        return
    head_seq, head_hash = head(db)
    db.conn.executemany(_INSERT, chain(entries, head_seq, head_hash))


# (borrower_id, case_id, visit_id) of what a response item names, by the kind of its id.
_SUBJECTS = {
    "case": "SELECT id, borrower_id, id, NULL FROM cases WHERE id IN ({marks})",
    "visit": "SELECT v.id, c.borrower_id, v.case_id, v.id FROM visits v "
    "JOIN cases c ON c.id = v.case_id WHERE v.id IN ({marks})",
    "record": "SELECT r.id, c.borrower_id, r.case_id, r.visit_id FROM sync_records r "
    "JOIN cases c ON c.id = r.case_id WHERE r.id IN ({marks})",
    # A contact-log entry as a review item names (`contact-<id>`, flag review).
    "contact": "SELECT k.id, c.borrower_id, k.case_id, k.visit_id FROM contacts k "
    "JOIN cases c ON c.id = k.case_id WHERE k.id IN ({marks})",
}
_SUBJECT_BATCH = 500


def subjects(
    db: sqlite_utils.Database, kind: str, ids: list[Any]
) -> dict[Any, tuple[int, int | None, int | None]]:
    """Id -> (borrower_id, case_id, visit_id) for cases, visits or records; unknown ids absent."""
    found: dict[Any, tuple[int, int | None, int | None]] = {}
    unique = list(dict.fromkeys(ids))
    if kind == "record":  # record ids of flag review items may name contact-log entries
        # (Only ids with the prefix are parsed: a push answer names a hundred record ids.)
        entries = {
            entry: i
            for i in unique
            if isinstance(i, str)
            and i.startswith(CONTACT_PREFIX)
            and (entry := contact_entry_id(i)) is not None
        }
        for entry, owner in subjects(db, "contact", list(entries)).items():
            found[entries[entry]] = owner
        named = set(entries.values())
        unique = [i for i in unique if i not in named]
    for start in range(0, len(unique), _SUBJECT_BATCH):
        batch = unique[start : start + _SUBJECT_BATCH]
        sql = _SUBJECTS[kind].format(marks=", ".join("?" * len(batch)))
        for key, borrower_id, case_id, visit_id in db.execute(sql, batch):
            found[key] = (borrower_id, case_id, visit_id)
    return found


def iter_entries(
    db: sqlite_utils.Database, after_seq: int = 0, upto_seq: int | None = None
) -> Iterator[dict[str, Any]]:
    cursor = db.execute(
        "SELECT * FROM exposure_ledger WHERE seq > ? AND seq <= ? ORDER BY seq",
        [after_seq, _NO_END if upto_seq is None else upto_seq],
    )
    columns = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(columns, row, strict=True))


def iter_rendered(
    db: sqlite_utils.Database, after_seq: int = 0, upto_seq: int | None = None
) -> Iterator[tuple[int, bytes, str, str]]:
    """(seq, canonical JSON bytes of the hashed columns, prev_hash, hash) in seq order."""
    if dialect(db) == "postgresql":
        return _rendered_here(db, after_seq, _NO_END if upto_seq is None else upto_seq)
    return db.conn.execute(_RENDERED, [after_seq, _NO_END if upto_seq is None else upto_seq])


_COLUMNS = (
    f"SELECT {', '.join(HASHED_COLUMNS)}, hash FROM exposure_ledger "
    "WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
)
_PAGE = 5000


def _rendered_here(
    db: sqlite_utils.Database, after_seq: int, upto_seq: int
) -> Iterator[tuple[int, bytes, str, str]]:
    """iter_rendered where the store has no json_array with SQLite's spelling: the columns
    read a page at a time and rendered by the domain's own encoder."""
    while True:
        rows = db.execute(_COLUMNS, [after_seq, upto_seq, _PAGE]).fetchall()
        for row in rows:
            yield row[0], canonical_json(row[:-1]).encode(), row[-2], row[-1]
        if len(rows) < _PAGE:
            return
        after_seq = rows[-1][0]


def hash_at(db: sqlite_utils.Database, seq: int) -> str | None:
    row = db.execute("SELECT hash FROM exposure_ledger WHERE seq = ?", [seq]).fetchone()
    return row[0] if row else None


@contextmanager
def read_snapshot(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Reads that see one state of the ledger, without taking the write lock."""
    if db.conn.in_transaction:
        yield db
        return
    db.execute("BEGIN")
    try:
        yield db
    finally:
        db.execute("COMMIT")


_FILTERS = {
    "borrower_id": "borrower_id = :borrower_id",
    "user_id": "user_id = :user_id",
    "device_id": "device_id = :device_id",
    "case_id": "case_id = :case_id",
    "visit_id": "visit_id = :visit_id",
    "since": "occurred_at >= :since",
    "until": "occurred_at < :until",
    "field": "EXISTS (SELECT 1 FROM json_each(fields) WHERE value = :field)",
    "after_seq": "seq > :after_seq",
}


def query_entries(db: sqlite_utils.Database, filters: dict[str, Any], limit: int) -> list[dict]:
    """Entries matching every given filter, oldest first, at most `limit`."""
    clauses = [_FILTERS[k] for k, v in filters.items() if v is not None and k in _FILTERS]
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    params = {k: v for k, v in filters.items() if v is not None}
    return list(
        db.query(
            f"SELECT * FROM exposure_ledger{where} ORDER BY seq LIMIT :limit",
            {**params, "limit": limit},
        )
    )


# --- Retention: the removable prefix ---------------------------------------------------


def prefix_older_than(db: sqlite_utils.Database, cutoff: str) -> int:
    """The last seq such that it and every entry before it occurred before `cutoff`."""
    young = db.execute(
        "SELECT seq FROM exposure_ledger WHERE occurred_at >= ? ORDER BY occurred_at LIMIT 1",
        [cutoff],
    ).fetchone()
    if young is None:
        return head(db)[0]
    # Concurrent requests may append slightly out of time order: look behind the first hit
    # (walking the rowid range, "+occurred_at" keeps the time index out of it).
    earlier = db.execute(
        "SELECT min(seq) FROM exposure_ledger WHERE seq < ? AND +occurred_at >= ?",
        [young[0], cutoff],
    ).fetchone()[0]
    return min(young[0], earlier or young[0]) - 1


def first_held_seq(db: sqlite_utils.Database, upto_seq: int) -> int | None:
    """The first entry (up to upto_seq) about a borrower who has a case under legal hold."""
    return db.execute(
        "SELECT min(seq) FROM exposure_ledger WHERE seq <= ? AND borrower_id IN "
        "(SELECT borrower_id FROM cases WHERE legal_hold = 1)",
        [upto_seq],
    ).fetchone()[0]


def delete_prefix(db: sqlite_utils.Database, upto_seq: int, certificate_id: int) -> int:
    """Remove every entry up to upto_seq, as the certificate authorises; the caller holds
    the write transaction."""
    with retention_gate(db, "exposure_ledger", certificate_id):
        return db.execute("DELETE FROM exposure_ledger WHERE seq <= ?", [upto_seq]).rowcount


# --- Checkpoints and the anchor --------------------------------------------------------


def insert_checkpoint(db: sqlite_utils.Database, checkpoint: dict[str, Any]) -> int:
    cursor = db.execute(
        "INSERT INTO ledger_checkpoints (created_at, head_seq, head_hash, key_id, signature, "
        "reason) VALUES (:created_at, :head_seq, :head_hash, :key_id, :signature, :reason)",
        checkpoint,
    )
    return cursor.lastrowid


def get_checkpoint(db: sqlite_utils.Database, checkpoint_id: int) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM ledger_checkpoints WHERE id = ?", [checkpoint_id]))
    return rows[0] if rows else None


def latest_checkpoint(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """The checkpoint furthest along the chain (the newest among equals)."""
    rows = list(
        db.query("SELECT * FROM ledger_checkpoints ORDER BY head_seq DESC, id DESC LIMIT 1")
    )
    return rows[0] if rows else None


def list_checkpoints(db: sqlite_utils.Database, after_id: int, limit: int) -> list[dict]:
    return list(
        db.query(
            "SELECT * FROM ledger_checkpoints WHERE id > ? ORDER BY id LIMIT ?", [after_id, limit]
        )
    )


def checkpoints_beyond(db: sqlite_utils.Database, seq: int) -> list[dict[str, Any]]:
    """Checkpoints of positions after `seq`, in chain order."""
    return list(
        db.query("SELECT * FROM ledger_checkpoints WHERE head_seq > ? ORDER BY head_seq, id", [seq])
    )


def anchor(db: sqlite_utils.Database) -> dict[str, Any] | None:
    rows = list(db.query("SELECT checkpoint_id, start_seq, start_hash FROM ledger_anchor"))
    return rows[0] if rows else None


def set_anchor(
    db: sqlite_utils.Database, checkpoint_id: int, start_seq: int, start_hash: str
) -> None:
    db.execute(
        "INSERT INTO ledger_anchor (id, checkpoint_id, start_seq, start_hash) VALUES (1, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET checkpoint_id = excluded.checkpoint_id, "
        "start_seq = excluded.start_seq, start_hash = excluded.start_hash",
        [checkpoint_id, start_seq, start_hash],
    )


def oldest_unsigned_entry(db: sqlite_utils.Database) -> tuple[int, str] | None:
    """(seq, occurred_at) of the first entry after the furthest checkpoint, if any."""
    row = db.execute(
        "SELECT seq, occurred_at FROM exposure_ledger WHERE seq > "
        "(SELECT coalesce(max(head_seq), 0) FROM ledger_checkpoints) ORDER BY seq LIMIT 1"
    ).fetchone()
    return (row[0], row[1]) if row else None


def checkpoints_after_id(db: sqlite_utils.Database, checkpoint_id: int) -> list[dict[str, Any]]:
    """Checkpoints stored after `checkpoint_id`, in id order."""
    return list(
        db.query("SELECT * FROM ledger_checkpoints WHERE id > ? ORDER BY id", [checkpoint_id])
    )


def checkpoints_by_id(db: sqlite_utils.Database, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The stored checkpoints among `ids`, by id."""
    rows = db.query(
        "SELECT * FROM ledger_checkpoints WHERE id IN (SELECT value FROM json_each(?))",
        [json.dumps(ids)],
    )
    return {row["id"]: row for row in rows}


# --- The keyring and the guards --------------------------------------------------------


def insert_key(db: sqlite_utils.Database, key: dict[str, Any]) -> None:
    db.execute(
        "INSERT INTO ledger_keys (key_id, public_key_pem, added_at, added_by, endorsed_by, "
        "endorsement) VALUES (:key_id, :public_key_pem, :added_at, :added_by, :endorsed_by, "
        ":endorsement)",
        {"endorsed_by": None, "endorsement": None, **key},
    )


def list_keys(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """The keyring in the order keys were added."""
    return list(db.query("SELECT * FROM ledger_keys ORDER BY added_at, rowid"))


def signer_key_ids(db: sqlite_utils.Database) -> set[str]:
    """Every key id that signed a stored checkpoint or purge certificate."""
    rows = db.execute(
        "SELECT key_id FROM ledger_checkpoints UNION SELECT key_id FROM purge_certificates"
    )
    return {row[0] for row in rows}


def triggers(db: sqlite_utils.Database) -> dict[str, str]:
    """The schema's triggers: name → SQL (on PostgreSQL: its definition and the source of
    the function it runs; a disabled trigger is absent)."""
    if dialect(db) == "postgresql":
        return dict(db.execute(_PG_TRIGGERS))
    return dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))


_PG_TRIGGERS = (
    "SELECT t.tgname, pg_get_triggerdef(t.oid) || chr(10) || p.prosrc FROM pg_trigger t "
    "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
    "WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' "
    "AND c.relnamespace = current_schema()::regnamespace"
)


def first_entry_before(db: sqlite_utils.Database, after_seq: int, before: str) -> int | None:
    """The first entry after `after_seq` stamped before `before`."""
    return db.execute(
        "SELECT min(seq) FROM exposure_ledger WHERE seq > ? AND occurred_at < ?",
        [after_seq, before],
    ).fetchone()[0]
