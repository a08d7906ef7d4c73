"""WatermelonDB's pull and push, answered by the native sync services.

A pull runs native pulls (sync_pull.pull: same cards, disclosure, ledger, purge orders and
outcomes) until nothing is left, and answers them as WatermelonDB change sets; a push turns
rows into native records and runs native pushes (sync_push.push: same validation,
reconciliation, outcomes and idempotency) in one transaction. What the protocols do not
share is kept in `watermelon_pulls`: the `timestamp` a pull answers names the native cursor
it reached, and presenting it again proves the phone applied that pull, purges included.
The mapping itself is sync/watermelon.py; the rules are docs/watermelondb.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlite_utils

from server.clock import parse_iso, to_iso
from server.errors import BadChangeSet, BadCursor, BatchTooLarge, SyncOptionUnsupported
from server.runtime import Caller, Runtime
from server.services import sync_pull, sync_push
from server.services.disclosure import held_cards
from server.storage import sync as sync_rows
from server.storage import watermelon as watermelon_rows
from server.storage.connection import transaction
from sync.cards import HeldCard
from sync.cursor import InvalidCursor, decode_cursor
from sync.watermelon import (
    OUTCOMES,
    RECORD_TABLES,
    SAFE_ID,
    SCHEMA_VERSION,
    TABLE_OF_KIND,
    TABLES_BY_NAME,
    VISITS,
    empty_changes,
    iso_to_ms,
    native_record,
    next_stamp,
    outcome_row,
    rejection_row,
    visit_row,
)

PAGE = 200  # native pull page: the largest the native protocol answers
REJECTIONS_PER_PULL = 1000
IDENTITY_TABLE = TABLE_OF_KIND["id_confirmation"]


def _device(caller: Caller) -> tuple[str, int]:
    principal = caller.principal
    assert principal is not None and principal.device_id is not None
    return principal.device_id, principal.user_id


def _refuse_options(args: dict[str, Any]) -> None:
    if args.get("turbo"):
        raise SyncOptionUnsupported(
            "turbo login sync is not offered: sync without unsafeTurbo (a first pull "
            "answers the day's cards as ordinary change sets)",
            field="turbo",
        )
    if args["schema_version"] != SCHEMA_VERSION:
        raise SyncOptionUnsupported(
            f"this server speaks app schema version {SCHEMA_VERSION}, not "
            f"{args['schema_version']}: use the schema of docs/watermelondb.md",
            field="schema_version",
            supported=SCHEMA_VERSION,
        )


def _acknowledge(db: sqlite_utils.Database, caller: Caller, applied: dict | None) -> list[int]:
    """The phone presented the timestamp of pull `applied`, which WatermelonDB stores only
    in the same local transaction that applied it: every purge that pull sent as deleted,
    and whose order still stands unchanged, is confirmed."""
    if applied is None or not applied["purges"]:
        return []
    device, _ = _device(caller)
    open_orders = {
        row["visit_id"]: parse_iso(row["purge_ordered_at"])
        for row in sync_rows.device_cards(db, device)
        if row["purge_ordered_at"]
    }
    done = [
        visit_id
        for visit_id, ordered_at in applied["purges"]
        if open_orders.get(visit_id) == parse_iso(ordered_at)
    ]
    if not done:
        return []
    return sync_rows.confirm_purges(db, device, done, to_iso(caller.now))


def _applied(db: sqlite_utils.Database, rt: Runtime, device: str, stamp: int | None) -> dict | None:
    """The kept pull a presented timestamp names, if the server issued it and still knows it
    (an unknown one is a first sync: the phone is sent what it should hold)."""
    if not stamp:
        return None
    applied = watermelon_rows.pull_at(db, device, stamp)
    if applied is None:
        return None
    try:
        applied["pull_seq"] = decode_cursor(
            applied["cursor"], key=rt.cursor_key, device_id=device
        ).pull_seq
    except InvalidCursor:
        return None  # the cursor key changed since: start again
    return applied


def pull(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, args: dict[str, Any]
) -> dict[str, Any]:
    """Changes since the phone's last applied pull, as WatermelonDB change sets."""
    _refuse_options(args)
    device, agent = _device(caller)
    now = caller.now
    with transaction(db):
        applied = _applied(db, rt, device, args.get("last_pulled_at"))
        _acknowledge(db, caller, applied)
        # After a local migration the app is sent everything it should hold again: a
        # superset of the records and columns any migration of this schema can need.
        start = applied if args.get("migration") is None else None
        held = held_cards(db, device)
        pages = _native_pages(db, rt, caller, start["cursor"] if start else None)
        rejections = watermelon_rows.rejections_after(
            db, device, start["rejection_seq"] if start else 0, REJECTIONS_PER_PULL
        )
        last = pages[-1]
        changes = empty_changes()
        as_updated = bool(args.get("send_created_as_updated"))
        _visit_rows(pages, held, start["pull_seq"] if start else None, as_updated, changes)
        _outcome_rows(db, agent, pages, rejections, changes, as_updated, wipe=start is not None)
        stamp = next_stamp(iso_to_ms(now) or 0, watermelon_rows.latest_stamp(db, device))
        watermelon_rows.save_pull(
            db,
            {
                "device_id": device,
                "stamp": stamp,
                "cursor": last["cursor"],
                "rejection_seq": rejections[-1]["id"]
                if rejections
                else (start["rejection_seq"] if start else 0),
                "purges": [(p["visit_id"], p["ordered_at"]) for p in last["purges"]],
                "pulled_at": to_iso(now),
            },
        )
        ttl = timedelta(seconds=rt.settings["WATERMELON_STAMP_TTL_S"])
        watermelon_rows.forget_pulls_before(db, device, to_iso(now - ttl))
    return {
        "changes": changes,
        "timestamp": stamp,
        "server_time": now,
        "has_more": last["has_more"] or len(rejections) == REJECTIONS_PER_PULL,
        "blocked": last["blocked"],
    }


def _visit_rows(
    pages: list[dict[str, Any]],
    held: dict[int, HeldCard],
    through: int | None,
    as_updated: bool,
    changes: dict[str, dict[str, list]],
) -> None:
    """Native upserts as `visits` rows, `updated` when the phone held the card after the
    pull it presented (`through`, its native pull number), else `created`; purges as
    deleted ids (the last page lists every open order)."""
    for view in {v["id"]: v for page in pages for v in page["upserts"]}.values():
        card = held.get(view["id"])
        known = (
            through is not None
            and card is not None
            and card.delivered_pull <= through
            and card.purge_ordered_at is None
        )
        bucket = "updated" if known or as_updated else "created"
        changes[VISITS][bucket].append(visit_row(view))
    changes[VISITS]["deleted"] = [str(p["visit_id"]) for p in pages[-1]["purges"]]


def _native_pages(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, cursor: str | None
) -> list[dict[str, Any]]:
    """Native pulls from `cursor` until nothing is left or the page budget is spent."""
    pages: list[dict[str, Any]] = []
    for _ in range(max(1, rt.settings["WATERMELON_MAX_PULL_PAGES"])):
        try:
            page = sync_pull.pull(db, rt, caller, cursor, PAGE)
        except BadCursor:
            page = sync_pull.pull(db, rt, caller, None, PAGE)
        pages.append(page)
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    return pages


def _outcome_rows(
    db: sqlite_utils.Database,
    agent: int,
    pages: list[dict[str, Any]],
    rejections: list[dict[str, Any]],
    changes: dict[str, dict[str, list]],
    as_updated: bool,
    *,
    wipe: bool,
) -> None:
    """Outcomes of stored records and records refused for good, as `record_outcomes` rows;
    for each answered borrower_identity confirmation, its typed characters cleared (only
    when resuming a pull, so a reinstalled app gets no rows it never had)."""
    bucket = "updated" if as_updated else "created"
    outcomes = [o for page in pages for o in page["outcomes"]]
    answered = [o["record_id"] for o in outcomes]
    stored = watermelon_rows.stored_ids(db, agent, answered + [r["record_id"] for r in rejections])
    rows = {o["record_id"]: outcome_row(o, stored.get(o["record_id"])) for o in outcomes}
    # A refused edit of a stored record (id_reused) is not told here: the stored record's
    # outcome, receipt included, stands on the phone.
    for rejection in rejections:
        if SAFE_ID.match(rejection["record_id"]) and rejection["record_id"] not in stored:
            rows[rejection["record_id"]] = rejection_row(rejection)
    changes[OUTCOMES][bucket].extend(rows.values())
    if wipe:
        changes[IDENTITY_TABLE]["updated"].extend(
            {"id": record_id, "id_last6": None}
            for record_id in answered
            if stored.get(record_id) == "id_confirmation"
        )


def _rows(changes: Any) -> list[tuple[str, dict]]:
    """The created and updated rows of the phone's tables; the change set's shape checked.
    Rows of server tables and deleted ids are not stored (docs/watermelondb.md)."""
    if not isinstance(changes, dict):
        raise BadChangeSet("changes: an object of tables", field="changes")
    rows = []
    for table, change in changes.items():
        if table not in TABLES_BY_NAME:
            raise BadChangeSet(
                f"changes.{str(table)[:64]}: not a table of the app schema",
                field=f"changes.{str(table)[:64]}",
            )
        if not isinstance(change, dict):
            raise BadChangeSet(
                "created, updated and deleted lists expected", field=f"changes.{table}"
            )
        for part in ("created", "updated", "deleted"):
            items = change.get(part, [])
            if not isinstance(items, list):
                raise BadChangeSet("a list expected", field=f"changes.{table}.{part}")
            if part == "deleted":
                continue
            for index, row in enumerate(items):
                if not isinstance(row, dict) or not isinstance(row.get("id"), str):
                    raise BadChangeSet(
                        "a row with a text id expected", field=f"changes.{table}.{part}.{index}"
                    )
                if table in RECORD_TABLES:
                    rows.append((table, row))
    return rows


def _server_wipes_back(
    db: sqlite_utils.Database, agent: int, rows: list[tuple[str, dict]]
) -> set[str]:
    """Stored borrower_identity confirmations pushed again without their typed characters:
    the server's own clearing coming back (the first push's answer was lost). They are
    stored; nothing is compared again."""
    candidates = [
        row["id"]
        for table, row in rows
        if table == IDENTITY_TABLE and row.get("id_last6") in (None, "")
    ]
    if not candidates:
        return set()
    return set(watermelon_rows.stored_ids(db, agent, candidates))


def push(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, body: dict[str, Any]
) -> dict[str, Any]:
    """Store the phone's rows as native records, all in one transaction; rows answered
    `retry` (a blob not uploaded yet) are named so the phone keeps them unsynced."""
    device, agent = _device(caller)
    rows = _rows(body["changes"])
    limit = rt.settings["WATERMELON_MAX_PUSH_RECORDS"]
    if len(rows) > limit:
        raise BatchTooLarge(f"at most {limit} rows per push", field="changes", limit=limit)
    device_time = body.get("device_time") or caller.now
    rejected: dict[str, list[str]] = {}
    with transaction(db):
        confirmed = _acknowledge(db, caller, _applied(db, rt, device, body["last_pulled_at"]))
        settled = _server_wipes_back(db, agent, rows)
        todo = [(table, row) for table, row in rows if row["id"] not in settled]
        records = [native_record(RECORD_TABLES[table], row) for table, row in todo]
        batch = rt.settings["MAX_PUSH_RECORDS"]
        for start in range(0, len(records), batch):
            part = {"device_time": device_time, "records": records[start : start + batch]}
            answer = sync_push.push(db, rt, caller, sync_push.prepare(db, rt, caller, part))
            for (table, row), outcome in zip(
                todo[start : start + batch], answer["outcomes"], strict=True
            ):
                if outcome["status"] == "retry":
                    rejected.setdefault(table, []).append(row["id"])
    return {
        "server_time": caller.now,
        "experimental_rejected_ids": rejected,
        "purges_confirmed": confirmed,
    }
