"""Stored field records, receipts, rejections, device cards and device sync state."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import msgspec
import sqlite_utils

Row = dict[str, Any]


def _marks(values: list[Any]) -> str:
    return ",".join("?" * len(values))


_decode = msgspec.json.Decoder().decode


def stored_json(text: str) -> Any:
    """A JSON column's value (outcome, body): msgspec reads it to the same values as
    json.loads, which decides anything msgspec refuses (NaN written by json.dumps)."""
    try:
        return _decode(text)
    except msgspec.MsgspecError:
        return json.loads(text)


def stored_records(db: sqlite_utils.Database, ids: list[str]) -> dict[str, Row]:
    if not ids:
        return {}
    rows = db.query(
        "SELECT id, agent_id, visit_id, digest, raw_digest, outcome, kind, body FROM sync_records "
        f"WHERE id IN ({_marks(ids)})",
        ids,
    )
    return {r["id"]: r for r in rows}


def visit_history_agents(db: sqlite_utils.Database, visit_ids: list[int]) -> dict[int, set[int]]:
    found: dict[int, set[int]] = {v: set() for v in visit_ids}
    if visit_ids:
        for row in db.execute(
            "SELECT visit_id, agent_id FROM visit_history "
            f"WHERE visit_id IN ({_marks(visit_ids)}) AND agent_id IS NOT NULL",
            visit_ids,
        ):
            found[row[0]].add(row[1])
    return found


def records_for_cases(
    db: sqlite_utils.Database,
    case_ids: list[int],
    reports_since: str | None,
    reports_until: str | None = None,
) -> list[Row]:
    """The cases' stored agreements and ID confirmations, and their visit reports whose
    `arrived_at` text sorts at or after `reports_since` (none when it is None) and, given
    `reports_until`, at or before it. A visit
    report's body and outcome are not read (NULL), only its `arrived_at`, which is all the
    frequency rules ask of it; the partial index sync_records_case_arrival (0016) finds
    them without reading the case's older reports."""
    if not case_ids:
        return []
    columns = "SELECT r.id, r.kind, r.agent_id, r.case_id, r.visit_id, r.recorded_at, v.purpose, "
    cases = _marks(case_ids)
    rows = list(
        db.query(
            f"{columns}r.body, r.outcome, NULL AS arrived_at FROM sync_records r "
            f"JOIN visits v ON v.id = r.visit_id WHERE r.case_id IN ({cases}) "
            "AND r.kind IN ('agreement', 'id_confirmation')",
            case_ids,
        )
    )
    if reports_since is not None:
        rows += db.query(
            f"{columns}NULL AS body, NULL AS outcome, "
            "json_extract(r.body, '$.arrived_at') AS arrived_at FROM sync_records r "
            f"JOIN visits v ON v.id = r.visit_id WHERE r.case_id IN ({cases}) "
            "AND r.kind = 'visit_report' AND json_extract(r.body, '$.arrived_at') >= ?"
            + ("" if reports_until is None else " AND json_extract(r.body, '$.arrived_at') <= ?"),
            [*case_ids, reports_since, *([] if reports_until is None else [reports_until])],
        )
    return rows


def id_checks_for_borrowers(
    db: sqlite_utils.Database, borrower_ids: list[int], since: str, not_compared: list[str]
) -> dict[int, int]:
    """By borrower: borrower_identity confirmations received since `since` for any of their
    cases, except those whose outcome carries one of the `not_compared` flag codes."""
    if not borrower_ids:
        return {}
    borrowers = ",".join("?" * len(borrower_ids))
    codes = ",".join("?" * len(not_compared))
    rows = db.execute(
        "SELECT c.borrower_id, count(*) FROM sync_records r JOIN cases c ON c.id = r.case_id "
        f"WHERE c.borrower_id IN ({borrowers}) AND r.kind = 'id_confirmation' "
        "AND json_extract(r.body, '$.confirmation_kind') = 'borrower_identity' "
        "AND r.received_at >= ? AND NOT EXISTS (SELECT 1 FROM json_each(r.outcome, '$.flags') f "
        f"WHERE json_extract(f.value, '$.code') IN ({codes})) GROUP BY c.borrower_id",
        [*borrower_ids, since, *not_compared],
    )
    return {borrower: count for borrower, count in rows}


# The columns a push writes of a stored record, in the order insert_record_values takes them.
RECORD_COLUMNS = (
    "id",
    "kind",
    "agent_id",
    "device_id",
    "visit_id",
    "case_id",
    "device_seq",
    "recorded_at",
    "received_at",
    "digest",
    "status",
    "outcome",
    "body",
    "raw_digest",
)
_INSERT_RECORD = (
    f"INSERT INTO sync_records ({', '.join(RECORD_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(RECORD_COLUMNS))})"
)


def insert_records(db: sqlite_utils.Database, records: list[Row]) -> None:
    """Insert stored records given as rows by column name (RECORD_COLUMNS)."""
    insert_record_values(db, [tuple(r[c] for c in RECORD_COLUMNS) for r in records])


def insert_record_values(db: sqlite_utils.Database, values: list[tuple[Any, ...]]) -> None:
    """Insert stored records given as tuples in RECORD_COLUMNS order, in one statement: a
    push writes 100 at a time, and positional values bind at half the cost of names."""
    db.conn.executemany(_INSERT_RECORD, values)


def insert_rejections(db: sqlite_utils.Database, rejections: list[Row]) -> None:
    """Note each refusal once per (record id, content); a replayed refusal adds nothing.

    The unique constraint keeps a refusal once; the NOT EXISTS keeps a replay from even
    trying, so on PostgreSQL it draws no id from the identity sequence (which a conflicting
    insert would, leaving a gap): ids run 1, 2, 3... on both engines."""
    db.conn.executemany(
        "INSERT OR IGNORE INTO sync_rejections (record_id, digest, agent_id, device_id, reason, "
        "message, received_at, kind) SELECT :record_id, :digest, :agent_id, :device_id, :reason, "
        ":message, :received_at, :kind WHERE NOT EXISTS (SELECT 1 FROM sync_rejections "
        "WHERE record_id = :record_id AND digest = :digest)",
        rejections,
    )


def insert_receipt(db: sqlite_utils.Database, receipt: Row) -> None:
    db.execute(
        "INSERT INTO agreement_receipts (agreement_id, content_hash, received_at, key_id, "
        "signature) VALUES (:agreement_id, :content_hash, :received_at, :key_id, :signature)",
        receipt,
    )


def receipts(db: sqlite_utils.Database, agreement_ids: list[str]) -> dict[str, Row]:
    if not agreement_ids:
        return {}
    rows = db.query(
        f"SELECT * FROM agreement_receipts WHERE agreement_id IN ({_marks(agreement_ids)})",
        agreement_ids,
    )
    return {r["agreement_id"]: r for r in rows}


def outcomes_after(
    db: sqlite_utils.Database, device_id: str, after_seq: int, limit: int
) -> list[Row]:
    """The device's records after `after_seq` in order, with their stored outcomes: what a
    pull answers. `body` is read for ID confirmations only, the one kind whose outcome it
    informs (a visit report's body, with its notes, is most of the row)."""
    cursor = db.execute(
        "SELECT seq, id, kind, visit_id, outcome, "
        "CASE WHEN kind = 'id_confirmation' THEN body END AS body FROM sync_records "
        "WHERE device_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        [device_id, after_seq, limit],
    )
    keys = [column[0] for column in cursor.description]
    return [dict(zip(keys, values, strict=True)) for values in cursor]


def list_records(db: sqlite_utils.Database, filters: Row, after: int, limit: int) -> list[Row]:
    clauses, params = ["seq > :after"], {"after": after, "limit": limit}
    for key in ("visit_id", "case_id", "agent_id", "kind", "status"):
        if filters.get(key) is not None:
            clauses.append(f"{key} = :{key}")
            params[key] = filters[key]
    return list(
        db.query(
            f"SELECT * FROM sync_records WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT :limit",
            params,
        )
    )


def device_cards(db: sqlite_utils.Database, device_id: str) -> list[Row]:
    """Cards the device holds or was ordered to purge and has not confirmed (read on every
    pull: a plain cursor, without the savepoint `db.query` wraps around a query)."""
    cursor = db.execute(
        "SELECT * FROM device_cards WHERE device_id = ? AND purge_confirmed_at IS NULL",
        [device_id],
    )
    keys = [column[0] for column in cursor.description]
    return [dict(zip(keys, values, strict=True)) for values in cursor]


def deliver_cards(db: sqlite_utils.Database, rows: Iterable[Row]) -> None:
    db.conn.executemany(
        "INSERT INTO device_cards (device_id, visit_id, borrower_id, case_id, card_digest, "
        "delivered_pull, delivered_at, expires_at) VALUES (:device_id, :visit_id, :borrower_id, "
        ":case_id, :card_digest, :delivered_pull, :delivered_at, :expires_at) "
        "ON CONFLICT (device_id, visit_id) DO UPDATE SET borrower_id = excluded.borrower_id, "
        "case_id = excluded.case_id, card_digest = excluded.card_digest, "
        "delivered_pull = excluded.delivered_pull, delivered_at = excluded.delivered_at, "
        "expires_at = excluded.expires_at, purge_reason = NULL, purge_ordered_at = NULL, "
        "purge_confirmed_at = NULL",
        list(rows),
    )


def order_purges(
    db: sqlite_utils.Database, device_id: str, reasons: dict[int, str], now: str
) -> None:
    db.conn.executemany(
        "UPDATE device_cards SET purge_reason = COALESCE(purge_reason, :reason), "
        "purge_ordered_at = COALESCE(purge_ordered_at, :now) "
        "WHERE device_id = :device_id AND visit_id = :visit_id",
        [
            {"reason": r, "now": now, "device_id": device_id, "visit_id": v}
            for v, r in reasons.items()
        ],
    )


def confirm_purges(
    db: sqlite_utils.Database, device_id: str, visit_ids: list[int], now: str
) -> list[int]:
    """Confirm purges that were ordered and are still open. Every acknowledged id is
    returned as settled: confirmed now, confirmed before, or with no order to confirm (a
    stale acknowledgement never confirms a later delivery, it is only told to stop)."""
    settled = list(dict.fromkeys(visit_ids))
    if not settled:
        return settled
    db.conn.executemany(
        "UPDATE device_cards SET purge_confirmed_at = :now WHERE device_id = :device_id "
        "AND visit_id = :visit_id AND purge_ordered_at IS NOT NULL "
        "AND purge_confirmed_at IS NULL",
        [{"now": now, "device_id": device_id, "visit_id": v} for v in settled],
    )
    return settled


def device_sync_state(db: sqlite_utils.Database, device_id: str) -> Row:
    cursor = db.execute("SELECT * FROM device_sync WHERE device_id = ?", [device_id])
    keys = [column[0] for column in cursor.description]
    row = cursor.fetchone()
    return dict(zip(keys, row, strict=True)) if row else {"device_id": device_id, "pull_count": 0}


def record_push(db: sqlite_utils.Database, state: Row) -> None:
    """Note a push; the device's own report (skew, queue) only if newer than the last one,
    so a late replay of an old batch cannot roll the health figures back."""
    db.execute(
        "INSERT INTO device_sync (device_id, last_push_at, clock_skew_s, queued_count, "
        "oldest_queued_at, reported_at) VALUES (:device_id, :now, :clock_skew_s, :queued_count, "
        ":oldest_queued_at, :device_time) ON CONFLICT (device_id) DO UPDATE SET "
        "last_push_at = :now, "
        "clock_skew_s = CASE WHEN :device_time >= COALESCE(reported_at, '') "
        "THEN :clock_skew_s ELSE clock_skew_s END, "
        "queued_count = CASE WHEN :queued_count IS NOT NULL "
        "AND :device_time >= COALESCE(reported_at, '') THEN :queued_count ELSE queued_count END, "
        "oldest_queued_at = CASE WHEN :queued_count IS NOT NULL "
        "AND :device_time >= COALESCE(reported_at, '') THEN :oldest_queued_at "
        "ELSE oldest_queued_at END, "
        "reported_at = MAX(COALESCE(reported_at, ''), :device_time)",
        state,
    )


def record_pull(db: sqlite_utils.Database, device_id: str, pull_count: int, now: str) -> None:
    db.execute(
        "INSERT INTO device_sync (device_id, pull_count, last_pull_at) VALUES (?, ?, ?) "
        "ON CONFLICT (device_id) DO UPDATE SET pull_count = excluded.pull_count, "
        "last_pull_at = excluded.last_pull_at",
        [device_id, pull_count, now],
    )


def health_rows(db: sqlite_utils.Database) -> list[Row]:
    """One row per agent device with its sync state and counts."""
    return list(
        db.query(
            "SELECT d.id AS device_id, d.user_id AS agent_id, u.username, "
            "d.status AS device_status, s.last_push_at, s.last_pull_at, s.clock_skew_s, "
            "s.queued_count, s.oldest_queued_at, "
            "(SELECT count(*) FROM device_cards c WHERE c.device_id = d.id "
            " AND c.purge_ordered_at IS NOT NULL AND c.purge_confirmed_at IS NULL) "
            "AS unconfirmed_purges, "
            "(SELECT min(purge_ordered_at) FROM device_cards c WHERE c.device_id = d.id "
            " AND c.purge_ordered_at IS NOT NULL AND c.purge_confirmed_at IS NULL) "
            "AS oldest_unconfirmed_purge_at, "
            "(SELECT count(DISTINCT record_id) FROM sync_rejections j WHERE j.device_id = d.id) "
            "AS rejected_records "
            "FROM devices d JOIN users u ON u.id = d.user_id LEFT JOIN device_sync s "
            "ON s.device_id = d.id WHERE u.role = 'agent' ORDER BY u.username, d.id"
        )
    )


def reported_visit_ids(db: sqlite_utils.Database, visit_ids: list[int]) -> set[int]:
    """Those of these visits for which a visit report is stored."""
    if not visit_ids:
        return set()
    return {
        row[0]
        for row in db.execute(
            "SELECT DISTINCT visit_id FROM sync_records WHERE kind = 'visit_report' "
            f"AND visit_id IN ({_marks(visit_ids)})",
            visit_ids,
        )
    }


def latest_report_fix(db: sqlite_utils.Database, agent_id: int) -> Row | None:
    """The GPS fix of the agent's most recently recorded visit report that has one."""
    rows = list(
        db.query(
            "SELECT visit_id, recorded_at, CAST(json_extract(body, '$.location.lat') AS REAL) "
            "AS lat, CAST(json_extract(body, '$.location.lon') AS REAL) AS lon FROM sync_records "
            "WHERE agent_id = ? AND kind = 'visit_report' "
            "AND json_extract(body, '$.location.lat') IS NOT NULL "
            "ORDER BY recorded_at DESC, seq DESC LIMIT 1",
            [agent_id],
        )
    )
    return rows[0] if rows else None


def visit_report_summaries(
    db: sqlite_utils.Database, visit_ids: list[int], completing: list[str]
) -> dict[int, Row]:
    """By visit id, for those of these visits with a stored visit report: how many
    (`reports`), the greatest `arrived_at` text (`latest`), and whether any has one of the
    `completing` outcomes (`completed`). Served by the indexes of migration 0019: the count
    from the index alone, the other two by one seek each."""
    if not visit_ids:
        return {}
    reports = "FROM sync_records r WHERE r.kind = 'visit_report' AND r.visit_id = v.id"
    rows = db.execute(
        f"SELECT v.id, (SELECT count(*) {reports}), "
        f"(SELECT max(json_extract(r.body, '$.arrived_at')) {reports}), "
        f"EXISTS (SELECT 1 {reports} AND json_extract(r.body, '$.outcome') "
        f"IN ({_marks(completing)})) FROM visits v WHERE v.id IN ({_marks(visit_ids)})",
        [*completing, *visit_ids],
    )
    return {
        visit_id: {"reports": count, "latest": latest, "completed": bool(completed)}
        for visit_id, count, latest, completed in rows
        if count
    }


def latest_reports(db: sqlite_utils.Database, since: dict[int, str]) -> dict[int, list[Row]]:
    """By visit id: seq, outcome and arrived_at of the visit's reports whose `arrived_at`
    text sorts at or after `since[visit]` (index sync_records_visit_arrival, 0019)."""
    found: dict[int, list[Row]] = {v: [] for v in since}
    if not since:
        return found
    ranges = " OR ".join(
        "(visit_id = ? AND json_extract(body, '$.arrived_at') >= ?)" for _ in since
    )
    for row in db.query(
        "SELECT visit_id, seq, json_extract(body, '$.outcome') AS outcome, "
        "json_extract(body, '$.arrived_at') AS arrived_at FROM sync_records "
        f"WHERE kind = 'visit_report' AND ({ranges}) ORDER BY seq",
        [value for pair in since.items() for value in pair],
    ):
        found[row["visit_id"]].append(row)
    return found


def flag_codes(db: sqlite_utils.Database, visit_ids: list[int]) -> dict[int, list[str]]:
    """The compliance flag codes raised on these visits' stored records, by visit id."""
    found: dict[int, list[str]] = {v: [] for v in visit_ids}
    if visit_ids:
        for visit_id, code in db.execute(
            "SELECT DISTINCT r.visit_id, json_extract(f.value, '$.code') FROM sync_records r, "
            f"json_each(r.outcome, '$.flags') f WHERE r.visit_id IN ({_marks(visit_ids)}) "
            "ORDER BY 1, 2",
            visit_ids,
        ):
            found[visit_id].append(code)
    return found


def order_case_purges(
    db: sqlite_utils.Database, case_ids: list[int], reason: str, now: str
) -> list[int]:
    """Order every unconfirmed card of these cases purged, on every device; a card already
    ordered keeps its first reason and time. Returns the case id of each order issued now."""
    return [
        row[0]
        for row in db.execute(
            "UPDATE device_cards SET purge_reason = :reason, purge_ordered_at = :now "
            "WHERE case_id IN (SELECT value FROM json_each(:cases)) "
            "AND purge_confirmed_at IS NULL AND purge_ordered_at IS NULL RETURNING case_id",
            {"reason": reason, "now": now, "cases": json.dumps(case_ids)},
        ).fetchall()
    ]


def order_visit_purges(
    db: sqlite_utils.Database, visit_ids: list[int], reason: str, now: str
) -> int:
    """Order every unconfirmed card of these visits purged, on every device."""
    return db.execute(
        "UPDATE device_cards SET purge_reason = :reason, purge_ordered_at = :now "
        "WHERE visit_id IN (SELECT value FROM json_each(:visits)) "
        "AND purge_confirmed_at IS NULL AND purge_ordered_at IS NULL",
        {"reason": reason, "now": now, "visits": json.dumps(visit_ids)},
    ).rowcount
