"""The contact log: entries, the sources that reported each, and the home-visit reports that
join the log when it is read."""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable
from typing import Any

import sqlite_utils

Row = dict[str, Any]

_COLUMNS = (
    "case_id",
    "channel",
    "direction",
    "occurred_at",
    "agent_id",
    "agent_name",
    "outcome",
    "duration_s",
    "notes",
    "visit_id",
    "external_ref",
    "natural_key",
    "source",
    "flags",
    "logged_at",
    "logged_by",
)
_VALUES_OF = operator.itemgetter(*_COLUMNS)
_FLAGS_AT = _COLUMNS.index("flags")
# SQLite's default limit on host parameters is far above this; chunks keep statements short.
_CHUNK = 500


def _marks(values: list[Any]) -> str:
    return ", ".join("?" for _ in values)


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def existing_keys(
    db: sqlite_utils.Database, natural_keys: list[str], external_refs: list[tuple[str, str]]
) -> tuple[dict[str, int], dict[tuple[str, str], Row]]:
    """Entries already logged under these natural keys, and under these (channel, external
    ref): (contact id by natural key, {id, external_ref} by (channel, ref))."""
    by_key: dict[str, int] = {}
    for chunk in _chunks(sorted(set(natural_keys))):
        for row in db.execute(
            f"SELECT natural_key, id FROM contacts WHERE natural_key IN ({_marks(chunk)})", chunk
        ):
            by_key[row[0]] = row[1]
    by_ref: dict[tuple[str, str], Row] = {}
    refs_of: dict[str, set[str]] = {}
    for channel, ref in external_refs:
        refs_of.setdefault(channel, set()).add(ref)
    # Per channel: the unique index on (channel, external_ref) answers each one directly.
    for channel, refs in sorted(refs_of.items()):
        for chunk in _chunks(sorted(refs)):
            for row in db.execute(
                "SELECT channel, external_ref, id FROM contacts "
                f"WHERE channel = ? AND external_ref IN ({_marks(chunk)})",
                [channel, *chunk],
            ):
                by_ref[(row[0], row[1])] = {"id": row[2]}
    return by_key, by_ref


def insert_contacts(db: sqlite_utils.Database, contacts: list[Row]) -> list[int]:
    """Insert new entries (their keys checked free beforehand); their ids, in order."""
    if not contacts:
        return []
    sql = (
        f"INSERT INTO contacts ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
    )
    values = []
    for contact in contacts:
        row = list(_VALUES_OF(contact))
        row[_FLAGS_AT] = json.dumps(row[_FLAGS_AT]) if row[_FLAGS_AT] else "[]"
        values.append(row)
    (before,) = db.execute("SELECT coalesce(max(id), 0) FROM contacts").fetchone()
    db.conn.executemany(sql, values)
    (after,) = db.execute("SELECT coalesce(max(id), 0) FROM contacts").fetchone()
    if after - before == len(values):
        # Each row took max(id) + 1 inside this write transaction: the ids follow in order.
        return list(range(before + 1, after + 1))
    ids, _ = existing_keys(db, [contact["natural_key"] for contact in contacts], [])
    return [ids[contact["natural_key"]] for contact in contacts]


def fill_external_refs(db: sqlite_utils.Database, refs: dict[int, str]) -> None:
    """Give entries logged without an external reference the one a later source carried."""
    db.conn.executemany(
        "UPDATE contacts SET external_ref = ? WHERE id = ? AND external_ref IS NULL",
        [(ref, contact_id) for contact_id, ref in refs.items()],
    )


def add_sources(db: sqlite_utils.Database, sources: list[tuple[int, str, str, str]]) -> None:
    """(contact id, source, reference, received_at); a source already noted is kept."""
    db.conn.executemany(
        "INSERT OR IGNORE INTO contact_sources (contact_id, source, reference, received_at) "
        "VALUES (?, ?, ?, ?)",
        sources,
    )


def known_sources(db: sqlite_utils.Database, source: str, references: list[str]) -> set[str]:
    """The references of this source already noted."""
    found: set[str] = set()
    for chunk in _chunks(sorted(set(references))):
        found.update(
            row[0]
            for row in db.execute(
                f"SELECT reference FROM contact_sources WHERE source = ? "
                f"AND reference IN ({_marks(chunk)})",
                [source, *chunk],
            )
        )
    return found


def contacts_of_case(db: sqlite_utils.Database, case_id: int) -> list[Row]:
    """The case's entries with their sources, oldest first."""
    rows = list(
        db.query(
            "SELECT c.*, u.username AS agent_username, "
            "(SELECT json_group_array(s.source) FROM contact_sources s "
            " WHERE s.contact_id = c.id) AS sources "
            "FROM contacts c LEFT JOIN users u ON u.id = c.agent_id "
            "WHERE c.case_id = ? ORDER BY c.occurred_at, c.id",
            [case_id],
        )
    )
    for row in rows:
        row["flags"] = json.loads(row["flags"])
        row["sources"] = sorted(set(json.loads(row["sources"] or "[]")))
    return rows


def get_contact(db: sqlite_utils.Database, contact_id: int) -> Row | None:
    rows = list(db.query("SELECT case_id FROM contacts WHERE id = ?", [contact_id]))
    if not rows:
        return None
    return next(r for r in contacts_of_case(db, rows[0]["case_id"]) if r["id"] == contact_id)


def visit_reports_of_case(db: sqlite_utils.Database, case_id: int) -> list[Row]:
    """Stored visit reports of the case: what a home visit adds to the log."""
    return list(
        db.query(
            "SELECT r.id, r.visit_id, r.agent_id, u.username AS agent_username, "
            "json_extract(r.body, '$.arrived_at') AS arrived_at, "
            "json_extract(r.body, '$.outcome') AS outcome, v.purpose "
            "FROM sync_records r JOIN visits v ON v.id = r.visit_id "
            "LEFT JOIN users u ON u.id = r.agent_id "
            "WHERE r.case_id = ? AND r.kind = 'visit_report' ORDER BY r.seq",
            [case_id],
        )
    )


def cases_by_external_id(db: sqlite_utils.Database, external_ids: list[str]) -> dict[str, int]:
    """case id by the bank's case id."""
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(set(external_ids))):
        for row in db.execute(
            f"SELECT external_id, id FROM cases WHERE external_id IN ({_marks(chunk)})", chunk
        ):
            found[row[0]] = row[1]
    return found


def users_by_name(db: sqlite_utils.Database, usernames: list[str]) -> dict[str, int]:
    """user id by username (folded to lower case)."""
    found: dict[str, int] = {}
    for chunk in _chunks(sorted({n.casefold() for n in usernames})):
        for row in db.execute(
            f"SELECT lower(username), id FROM users WHERE lower(username) IN ({_marks(chunk)})",
            chunk,
        ):
            found[row[0]] = row[1]
    return found


def contacts_of_cases(db: sqlite_utils.Database, case_ids: list[int]) -> list[Row]:
    """channel, direction, occurred_at, outcome of every entry of these cases."""
    found: list[Row] = []
    for chunk in _chunks(sorted(set(case_ids))):
        found += db.query(
            "SELECT case_id, channel, direction, occurred_at, outcome FROM contacts "
            f"WHERE case_id IN ({_marks(chunk)}) ORDER BY occurred_at",
            chunk,
        )
    return found


def calls_of_cases(
    db: sqlite_utils.Database, case_ids: list[int], channel: str, since: str, until: str
) -> list[tuple[int, str, str, str]]:
    """(case_id, direction, occurred_at, outcome) of the entries of these cases on one
    channel with `since` <= occurred_at < `until` (stored times), in no set order."""
    found: list[tuple[int, str, str, str]] = []
    for chunk in _chunks(sorted(set(case_ids))):
        found += db.execute(
            "SELECT case_id, direction, occurred_at, outcome FROM contacts "
            f"WHERE case_id IN ({_marks(chunk)}) AND channel = ? "
            "AND occurred_at >= ? AND occurred_at < ?",
            [*chunk, channel, since, until],
        ).fetchall()
    return found


def notices_of_cases(
    db: sqlite_utils.Database, case_ids: list[int], channels: list[str]
) -> list[tuple[int, str, str, str, str | None]]:
    """(case_id, channel, direction, occurred_at, outcome) of the outbound entries of these
    cases on these (written notice) channels, not returned, in no set order; index
    contacts_case_channel (0019) reads only those entries, not the cases' calls."""
    found: list[tuple[int, str, str, str, str | None]] = []
    for chunk in _chunks(sorted(set(case_ids))):
        found += db.execute(
            "SELECT case_id, channel, direction, occurred_at, outcome FROM contacts "
            f"WHERE case_id IN ({_marks(chunk)}) AND channel IN ({_marks(channels)}) "
            "AND direction = 'outbound' AND coalesce(outcome, '') <> 'returned'",
            [*chunk, *channels],
        ).fetchall()
    return found


def last_contact_id(db: sqlite_utils.Database) -> int:
    """The id of the latest entry (0 on an empty log)."""
    return db.execute("SELECT coalesce(max(id), 0) FROM contacts").fetchone()[0]


def calls_after(
    db: sqlite_utils.Database, channel: str, after_id: int
) -> list[tuple[int, str, str, str, int]]:
    """(case_id, direction, occurred_at, outcome, id) of the entries on one channel logged
    after entry `after_id`."""
    return db.execute(
        "SELECT case_id, direction, occurred_at, outcome, id FROM contacts "
        "WHERE id > ? AND channel = ?",
        [after_id, channel],
    ).fetchall()


def do_not_contact_of_borrowers(db: sqlite_utils.Database, borrower_ids: list[int]) -> list[Row]:
    """Every do-not-contact request of these borrowers, withdrawn ones included."""
    found: list[Row] = []
    for chunk in _chunks(sorted(set(borrower_ids))):
        found += db.query(
            "SELECT borrower_id, channel, taken_at, withdrawn_at FROM borrower_requests "
            f"WHERE kind = 'do_not_contact' AND borrower_id IN ({_marks(chunk)})",
            chunk,
        )
    return found


def borrowers_of_cases(db: sqlite_utils.Database, case_ids: list[int]) -> dict[int, Row]:
    """{borrower_id, time_zone} of each case."""
    found: dict[int, Row] = {}
    for chunk in _chunks(sorted(set(case_ids))):
        for row in db.query(
            "SELECT c.id, c.borrower_id, b.time_zone FROM cases c "
            f"JOIN borrowers b ON b.id = c.borrower_id WHERE c.id IN ({_marks(chunk)})",
            chunk,
        ):
            found[row["id"]] = row
    return found


def insert_promises(db: sqlite_utils.Database, promises: list[Row]) -> None:
    """Promises made on contacts; one already noted for the same entry is kept."""
    if promises:
        db.conn.executemany(
            "INSERT OR IGNORE INTO promises (source, source_id, case_id, agent_id, visit_id, "
            "amount, due_date, made_at) VALUES (:source, :source_id, :case_id, :agent_id, "
            ":visit_id, :amount, :due_date, :made_at)",
            promises,
        )
