"""Read-only SQL behind the privacy officer's reports and the anomaly scan.

Every query is bounded by an indexed range of exposure_ledger: (borrower_id, occurred_at),
(user_id, occurred_at), (device_id, occurred_at) or (occurred_at). Times are stored ISO
strings ('...Z', microseconds), so string comparison is time comparison.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

Row = dict[str, Any]

# The visit_history version in force when the entry was written (the latest at or before it).
_VERSION_IN_FORCE = (
    "(SELECT h2.id FROM visit_history h2 WHERE h2.visit_id = e.visit_id "
    "AND h2.changed_at <= e.occurred_at ORDER BY h2.version DESC LIMIT 1)"
)


def _rows(db: sqlite_utils.Database, sql: str, params: dict[str, Any]) -> list[Row]:
    return list(db.query(sql, params))


# -- borrower disclosure report ------------------------------------------------------------


def borrower_known(db: sqlite_utils.Database, borrower_id: int) -> bool:
    """The borrower is in the store, or the ledger still remembers it (its row purged)."""
    return (
        db.execute(
            "SELECT EXISTS (SELECT 1 FROM borrowers WHERE id = :b) "
            "OR EXISTS (SELECT 1 FROM exposure_ledger WHERE borrower_id = :b)",
            {"b": borrower_id},
        ).fetchone()[0]
        == 1
    )


_BORROWER_RANGE = (
    "e.borrower_id = :borrower_id AND e.occurred_at >= :since AND e.occurred_at < :until"
)


def borrower_disclosures(
    db: sqlite_utils.Database, borrower_id: int, since: str, until: str, after: int, limit: int
) -> list[Row]:
    """The borrower's ledger entries with recipient names and the device card's purge state."""
    return _rows(
        db,
        "SELECT e.seq, e.occurred_at, e.user_id, u.username, e.role, e.device_id, e.case_id, "
        "e.visit_id, e.fields, e.purpose, e.endpoint, e.request_id, e.outcome, "
        "c.device_id IS NOT NULL AS card_tracked, c.purge_reason, c.purge_ordered_at, "
        "c.purge_confirmed_at "
        "FROM exposure_ledger e LEFT JOIN users u ON u.id = e.user_id "
        "LEFT JOIN device_cards c ON c.device_id = e.device_id AND c.visit_id = e.visit_id "
        f"WHERE {_BORROWER_RANGE} AND e.seq > :after ORDER BY e.seq LIMIT :limit",
        {
            "borrower_id": borrower_id,
            "since": since,
            "until": until,
            "after": after,
            "limit": limit,
        },
    )


def borrower_summary(db: sqlite_utils.Database, borrower_id: int, since: str, until: str) -> Row:
    params = {"borrower_id": borrower_id, "since": since, "until": until}
    summary = _rows(
        db,
        "SELECT count(*) AS entries, count(DISTINCT e.user_id) AS recipients, "
        "count(DISTINCT e.device_id) AS devices, min(e.occurred_at) AS first_at, "
        f"max(e.occurred_at) AS last_at FROM exposure_ledger e WHERE {_BORROWER_RANGE}",
        params,
    )[0]
    summary["fields"] = [
        r["value"]
        for r in db.query(
            "SELECT DISTINCT j.value FROM exposure_ledger e, json_each(e.fields) j "
            f"WHERE {_BORROWER_RANGE} ORDER BY j.value",
            params,
        )
    ]
    return summary


def borrower_recipients(
    db: sqlite_utils.Database, borrower_id: int, since: str, until: str, limit: int
) -> list[Row]:
    """Who received the borrower's data in the period, with counts and first/last times."""
    return _rows(
        db,
        "SELECT e.user_id, u.username, e.role, count(*) AS entries, "
        "min(e.occurred_at) AS first_at, max(e.occurred_at) AS last_at "
        "FROM exposure_ledger e LEFT JOIN users u ON u.id = e.user_id "
        f"WHERE {_BORROWER_RANGE} GROUP BY e.user_id, e.role, u.username "
        "ORDER BY first_at LIMIT :limit",
        {"borrower_id": borrower_id, "since": since, "until": until, "limit": limit},
    )


# -- per-agent and per-device history -------------------------------------------------------


def user_time_zone(db: sqlite_utils.Database, user_id: int) -> tuple[bool, str | None]:
    """(the user exists, the agent's time zone or None)."""
    rows = _rows(
        db,
        "SELECT u.id, a.time_zone FROM users u LEFT JOIN agents a ON a.user_id = u.id "
        "WHERE u.id = :id",
        {"id": user_id},
    )
    return (True, rows[0]["time_zone"]) if rows else (False, None)


def device_owner(db: sqlite_utils.Database, device_id: str) -> Row | None:
    """The device's owner and the owner's time zone, or None for an unknown device."""
    rows = _rows(
        db,
        "SELECT d.user_id, a.time_zone FROM devices d LEFT JOIN agents a ON a.user_id = d.user_id "
        "WHERE d.id = :id",
        {"id": device_id},
    )
    return rows[0] if rows else None


_RECIPIENT_COLUMNS = {"user": "e.user_id", "device": "e.device_id"}


def recipient_entries(
    db: sqlite_utils.Database,
    recipient: str,
    value: int | str,
    since: str,
    until: str,
    after: int,
    limit: int,
) -> list[Row]:
    """What a user or a device received, each entry with the visit version then in force."""
    column = _RECIPIENT_COLUMNS[recipient]
    return _rows(
        db,
        "SELECT e.seq, e.occurred_at, e.user_id, e.role, e.device_id, e.borrower_id, e.case_id, "
        "e.visit_id, e.fields, e.purpose, e.endpoint, h.version AS visit_version, "
        "h.agent_id AS assigned_agent_id, h.visit_date, h.status AS visit_status "
        f"FROM exposure_ledger e LEFT JOIN visit_history h ON h.id = {_VERSION_IN_FORCE} "
        f"WHERE {column} = :value AND e.occurred_at >= :since AND e.occurred_at < :until "
        "AND e.seq > :after ORDER BY e.seq LIMIT :limit",
        {"value": value, "since": since, "until": until, "after": after, "limit": limit},
    )


# -- anomaly scan ----------------------------------------------------------------------------


def active_recipients(db: sqlite_utils.Database, since: str, until: str) -> list[Row]:
    """Users with ledger entries in the period: their time zone and whether they are agents."""
    return _rows(
        db,
        "SELECT r.user_id, r.is_agent, a.time_zone FROM (SELECT user_id, "
        "max(role = 'agent') AS is_agent FROM exposure_ledger "
        "WHERE occurred_at >= :since AND occurred_at < :until GROUP BY user_id) r "
        "LEFT JOIN agents a ON a.user_id = r.user_id ORDER BY r.user_id",
        {"since": since, "until": until},
    )


def unassigned_agent_entries(db: sqlite_utils.Database, since: str, until: str) -> list[Row]:
    """Agent entries whose visit was not assigned to that agent (or cancelled, or absent)
    in the version in force when the entry was written."""
    return _rows(
        db,
        "SELECT e.seq, e.occurred_at, e.user_id, e.device_id, e.borrower_id, e.visit_id, "
        "h.id AS history_id, h.agent_id AS assigned_agent_id, h.status AS visit_status "
        f"FROM exposure_ledger e LEFT JOIN visit_history h ON h.id = {_VERSION_IN_FORCE} "
        "WHERE e.occurred_at >= :since AND e.occurred_at < :until AND e.role = 'agent' "
        "AND (h.id IS NULL OR h.agent_id IS NOT e.user_id OR h.status = 'cancelled') "
        "ORDER BY e.seq",
        {"since": since, "until": until},
    )


def entries_in_windows(db: sqlite_utils.Database, windows: list[tuple[int, str, str]]) -> list[Row]:
    """Entries of each user inside that user's [from, to) windows, one indexed probe each."""
    return _rows(
        db,
        "WITH w(user_id, lo, hi) AS (SELECT CAST(json_extract(value, '$[0]') AS INTEGER), "
        "json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(:windows)) "
        "SELECT e.seq, e.occurred_at, e.user_id, e.device_id, e.borrower_id "
        "FROM w JOIN exposure_ledger e ON e.user_id = w.user_id "
        "AND e.occurred_at >= w.lo AND e.occurred_at < w.hi ORDER BY e.seq",
        {"windows": json.dumps(windows)},
    )


def daily_borrower_counts(
    db: sqlite_utils.Database, shifts: list[tuple[int, str]], since: str, until: str
) -> list[Row]:
    """Distinct borrowers per agent per local day; `shifts` gives each agent's UTC offset
    as an SQLite date modifier ('+480 minutes')."""
    return _rows(
        db,
        "WITH z(user_id, shift) AS (SELECT CAST(json_extract(value, '$[0]') AS INTEGER), "
        "json_extract(value, '$[1]') FROM json_each(:shifts)) "
        "SELECT e.user_id, date(e.occurred_at, z.shift) AS day, "
        "count(DISTINCT e.borrower_id) AS borrowers "
        "FROM z JOIN exposure_ledger e ON e.user_id = z.user_id "
        "AND e.occurred_at >= :since AND e.occurred_at < :until AND e.role = 'agent' "
        "GROUP BY e.user_id, day",
        {"shifts": json.dumps(shifts), "since": since, "until": until},
    )


def user_entry_span(
    db: sqlite_utils.Database, user_id: int, since: str, until: str, limit: int
) -> Row:
    """A user's entries in [since, until): the first `limit` seqs, the count, first/last time."""
    params = {"user_id": user_id, "since": since, "until": until}
    where = "user_id = :user_id AND occurred_at >= :since AND occurred_at < :until"
    span = _rows(
        db,
        "SELECT count(*) AS seq_count, min(occurred_at) AS first_at, "
        f"max(occurred_at) AS last_at FROM exposure_ledger WHERE {where}",
        params,
    )[0]
    span["seqs"] = [
        r[0]
        for r in db.execute(
            f"SELECT seq FROM exposure_ledger WHERE {where} ORDER BY seq LIMIT :limit",
            {**params, "limit": limit},
        )
    ]
    return span


def unacknowledged_purges(
    db: sqlite_utils.Database, ordered_before: str, max_seqs: int
) -> list[Row]:
    """Purge orders still unconfirmed that were given before `ordered_before`, each with the
    ledger entries that delivered the card now held (from its last delivery to the order)."""
    # Bounded on both sides so the (device_id, occurred_at) index reads only the card's own
    # span, not the device's whole history: on a 10M-entry ledger that is minutes vs ms.
    delivered = (
        "FROM exposure_ledger e WHERE e.device_id = c.device_id "
        "AND e.occurred_at >= c.delivered_at AND e.occurred_at <= c.purge_ordered_at "
        "AND e.visit_id = c.visit_id"
    )
    return _rows(
        db,
        "SELECT c.device_id, c.visit_id, c.borrower_id, c.case_id, c.purge_reason, "
        "c.purge_ordered_at, c.delivered_at, d.user_id, "
        f"(SELECT json_group_array(seq) FROM (SELECT e.seq {delivered} "
        "ORDER BY e.seq LIMIT :max_seqs)) AS seqs, "
        f"(SELECT count(*) {delivered}) AS seq_count "
        "FROM device_cards c LEFT JOIN devices d ON d.id = c.device_id "
        "WHERE c.purge_confirmed_at IS NULL AND c.purge_ordered_at IS NOT NULL "
        "AND c.purge_ordered_at < :before ORDER BY c.purge_ordered_at, c.device_id, c.visit_id",
        {"before": ordered_before, "max_seqs": max_seqs},
    )


def served_and_reported(
    db: sqlite_utils.Database, since: str, until: str, min_borrowers: int
) -> list[Row]:
    """Per agent with at least `min_borrowers` in the period: distinct borrowers received and
    how many of the visits behind them the agent reported on (a visit_report, whenever)."""
    return _rows(
        db,
        "SELECT s.user_id, count(DISTINCT s.borrower_id) AS borrowers, "
        "count(DISTINCT s.visit_id) AS visits, "
        "count(DISTINCT CASE WHEN EXISTS (SELECT 1 FROM sync_records r "
        "WHERE r.visit_id = s.visit_id AND r.kind = 'visit_report' AND r.agent_id = s.user_id) "
        "THEN s.visit_id END) AS reported_visits "
        "FROM exposure_ledger s WHERE s.occurred_at >= :since AND s.occurred_at < :until "
        "AND s.role = 'agent' GROUP BY s.user_id "
        "HAVING count(DISTINCT s.borrower_id) >= :min_borrowers "
        "ORDER BY s.user_id",
        {"since": since, "until": until, "min_borrowers": min_borrowers},
    )


# -- records of processing ----------------------------------------------------------------


def table_columns(db: sqlite_utils.Database, table: str) -> list[str]:
    """Column names of a table: what the store is able to hold, never what it holds."""
    return [column.name for column in db[table].columns]
