"""The phone's local SQLite store: outbox, cards, purge acknowledgements, blobs, tokens.

Every SQL string of the reference client is here. Deleted rows are overwritten on disk
(`secure_delete`), so a purge or a wipe leaves no borrower data behind.
"""

from __future__ import annotations

import json as jsonlib
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .bodies import TYPED_ID_FIELD, blob_refs

# Server statuses after which a record has been stored and is never sent again.
ACKNOWLEDGED = frozenset({"accepted", "flagged", "duplicate"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    device_seq INTEGER NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    visit_id INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'acknowledged', 'rejected')),
    status TEXT,
    reason TEXT,
    outcome TEXT,
    id_verification TEXT,
    receipt TEXT
);
CREATE TABLE IF NOT EXISTS cards (visit_id INTEGER PRIMARY KEY, visit TEXT NOT NULL,
                                  expires_at TEXT);
CREATE TABLE IF NOT EXISTS purge_acks (visit_id INTEGER PRIMARY KEY, reason TEXT,
                                       purged_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (
    sha256 TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    data BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'uploaded', 'refused')),
    upload_id TEXT,
    refused_reason TEXT
);
"""


@dataclass(frozen=True)
class OutboxEntry:
    """One record in the local outbox and what the server said about it."""

    id: str
    kind: str
    visit_id: int
    device_seq: int
    recorded_at: str
    state: str  # queued | acknowledged | rejected
    status: str | None  # the server's last status for it
    reason: str | None
    flags: tuple[str, ...]
    id_verification: str | None
    receipt: Mapping[str, Any] | None
    body: Mapping[str, Any]


@dataclass(frozen=True)
class ClientReport:
    """Counts of what the device holds now."""

    queued: int
    acknowledged: int
    flagged: int
    rejected: int
    oldest_queued_at: str | None
    cards: int
    purge_acks_pending: int
    blobs_pending: int
    blobs_refused: int
    wiped: bool
    unsent_at_wipe: int


@dataclass(frozen=True)
class PendingBlob:
    """A blob waiting for upload, without its bytes."""

    sha256: str
    content_type: str
    size: int
    upload_id: str | None


def outcome_state(state: str, status: str | None) -> str:
    """A record's local state after the server's answer: only a queued record changes
    state, so an acknowledgement is never taken back."""
    if state == "queued" and status in ACKNOWLEDGED:
        return "acknowledged"
    if state == "queued" and status == "rejected":
        return "rejected"
    return state


class LocalStore:
    """One phone's SQLite file; methods that write several rows run in `transaction()`."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, or a no-op inside an open transaction."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- meta: tokens, cursor, device sequence, wipe marker -----------------------------

    def meta(self, key: str) -> str | None:
        """A stored setting, or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row["value"]

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting."""
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def delete_meta(self, key: str) -> None:
        """Forget a setting."""
        self._db.execute("DELETE FROM meta WHERE key = ?", (key,))

    # --- outbox -----------------------------------------------------------------------

    def enqueue(
        self, record_id: str, kind: str, visit_id: int, recorded_at: str, body: Mapping[str, Any]
    ) -> None:
        """Queue a record under the next device sequence number."""
        with self.transaction():
            seq = int(self.meta("device_seq") or 0) + 1
            self.set_meta("device_seq", str(seq))
            self._db.execute(
                "INSERT INTO outbox (id, device_seq, kind, visit_id, recorded_at, body)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (record_id, seq, kind, visit_id, recorded_at, jsonlib.dumps(body)),
            )

    def queued_records(self) -> list[dict[str, Any]]:
        """Queued records in device order, as the push sends them."""
        rows = self._db.execute(
            "SELECT id, kind, visit_id, device_seq, recorded_at, body FROM outbox"
            " WHERE state = 'queued' ORDER BY device_seq"
        )
        return [{**dict(row), "body": jsonlib.loads(row["body"])} for row in rows]

    def apply_outcome(self, outcome: Mapping[str, Any]) -> str:
        """Record the server's answer for one record; returns its new local state."""
        row = self._db.execute(
            "SELECT state, kind, body FROM outbox WHERE id = ?", (outcome["record_id"],)
        ).fetchone()
        if row is None:
            return "unknown"
        status = outcome.get("status")
        state = outcome_state(row["state"], status)
        if state == "queued":
            for sha256 in outcome.get("missing_blobs") or ():
                self._db.execute(
                    "UPDATE blobs SET state = 'pending' WHERE sha256 = ? AND state = 'uploaded'",
                    (sha256,),
                )
        body = jsonlib.loads(row["body"])
        if state != "queued":
            # The typed ID characters are needed only until the server has answered.
            body.pop(TYPED_ID_FIELD, None)
        self._db.execute(
            "UPDATE outbox SET state = ?, status = ?, reason = ?, outcome = ?, body = ?,"
            " id_verification = COALESCE(?, id_verification), receipt = COALESCE(?, receipt)"
            " WHERE id = ?",
            (
                state,
                status,
                outcome.get("reason"),
                jsonlib.dumps(dict(outcome)),
                jsonlib.dumps(body),
                outcome.get("id_verification"),
                jsonlib.dumps(outcome["receipt"]) if outcome.get("receipt") else None,
                outcome["record_id"],
            ),
        )
        return state

    def outbox_entries(self) -> list[OutboxEntry]:
        """Every record in the outbox, in device order."""
        rows = self._db.execute("SELECT * FROM outbox ORDER BY device_seq").fetchall()
        return [_entry(row) for row in rows]

    # --- cards ------------------------------------------------------------------------

    def put_card(self, visit: Mapping[str, Any], expires_at: str | None) -> None:
        """Keep (or replace) a visit's card; a stale purge acknowledgement of it goes."""
        self._db.execute(
            "INSERT OR REPLACE INTO cards (visit_id, visit, expires_at) VALUES (?, ?, ?)",
            (visit["id"], jsonlib.dumps(visit), expires_at),
        )
        # The card is back: an acknowledgement of an earlier purge of it is stale and
        # must not be mistaken for the purge of this new delivery.
        self._db.execute("DELETE FROM purge_acks WHERE visit_id = ?", (visit["id"],))

    def purge_card(self, visit_id: int, reason: str | None, purged_at: str) -> None:
        """Delete a card on the server's order and note the acknowledgement to send."""
        self._db.execute("DELETE FROM cards WHERE visit_id = ?", (visit_id,))
        self._db.execute(
            "INSERT OR REPLACE INTO purge_acks (visit_id, reason, purged_at) VALUES (?, ?, ?)",
            (visit_id, reason, purged_at),
        )

    def drop_cards(self, visit_ids: Sequence[int]) -> None:
        """Delete cards without telling the server (they expired on the device)."""
        with self.transaction():
            for visit_id in visit_ids:
                self._db.execute("DELETE FROM cards WHERE visit_id = ?", (visit_id,))

    def card_visits(self) -> list[dict[str, Any]]:
        """The visits held, by visit id."""
        rows = self._db.execute("SELECT visit FROM cards ORDER BY visit_id").fetchall()
        return [jsonlib.loads(row["visit"]) for row in rows]

    def card_expiries(self) -> list[tuple[int, datetime | None]]:
        """(visit id, expires_at) of every card held, by visit id."""
        rows = self._db.execute("SELECT visit_id, expires_at FROM cards ORDER BY visit_id")
        return [(row[0], datetime.fromisoformat(row[1]) if row[1] else None) for row in rows]

    # --- purge acknowledgements ---------------------------------------------------------

    def pending_acks(self) -> list[int]:
        """Visit ids whose purge the server has not confirmed yet."""
        rows = self._db.execute("SELECT visit_id FROM purge_acks ORDER BY visit_id")
        return [row["visit_id"] for row in rows]

    def confirm_acks(self, visit_ids: Sequence[int]) -> int:
        """Forget acknowledgements the server confirmed; returns how many."""
        for visit_id in visit_ids:
            self._db.execute("DELETE FROM purge_acks WHERE visit_id = ?", (visit_id,))
        return len(visit_ids)

    # --- blobs ------------------------------------------------------------------------

    def add_blob(self, sha256: str, content_type: str, data: bytes) -> None:
        """Keep a blob for upload (once per content)."""
        self._db.execute(
            "INSERT OR IGNORE INTO blobs (sha256, content_type, data) VALUES (?, ?, ?)",
            (sha256, content_type, data),
        )

    def pending_blobs(self) -> list[PendingBlob]:
        """Blobs waiting for upload, by hash."""
        rows = self._db.execute(
            "SELECT sha256, content_type, length(data) AS size, upload_id FROM blobs"
            " WHERE state = 'pending' ORDER BY sha256"
        )
        return [PendingBlob(**dict(row)) for row in rows]

    def blob_data(self, sha256: str) -> bytes:
        """A blob's bytes."""
        return self._db.execute("SELECT data FROM blobs WHERE sha256 = ?", (sha256,)).fetchone()[0]

    def set_blob_state(self, sha256: str, state: str, reason: str | None = None) -> None:
        """Mark a blob uploaded, refused or pending again; its upload session ends."""
        self._db.execute(
            "UPDATE blobs SET state = ?, refused_reason = ?, upload_id = NULL WHERE sha256 = ?",
            (state, reason, sha256),
        )

    def set_upload_id(self, sha256: str, upload_id: str) -> None:
        """Remember the resumable upload session of a blob."""
        self._db.execute("UPDATE blobs SET upload_id = ? WHERE sha256 = ?", (upload_id, sha256))

    def forget_sent_blobs(self) -> None:
        """Drop uploaded blobs no queued record needs: signatures are borrower data too."""
        needed: set[str] = set()
        for row in self._db.execute("SELECT kind, body FROM outbox WHERE state = 'queued'"):
            needed |= blob_refs(row["kind"], jsonlib.loads(row["body"]))
        for row in self._db.execute("SELECT sha256 FROM blobs WHERE state = 'uploaded'"):
            if row["sha256"] not in needed:
                self._db.execute("DELETE FROM blobs WHERE sha256 = ?", (row["sha256"],))

    # --- counts and the wipe ----------------------------------------------------------

    def has_pending_blobs(self) -> bool:
        """True while a blob waits for upload."""
        return self._count("blobs", "state = 'pending'") > 0

    def report(self) -> ClientReport:
        """Counts of what the device holds now."""
        count = self._count
        oldest = self._db.execute(
            "SELECT MIN(recorded_at) FROM outbox WHERE state = 'queued'"
        ).fetchone()[0]
        return ClientReport(
            queued=count("outbox", "state = 'queued'"),
            acknowledged=count("outbox", "state = 'acknowledged'"),
            flagged=count("outbox", "state = 'acknowledged' AND status = 'flagged'"),
            rejected=count("outbox", "state = 'rejected'"),
            oldest_queued_at=oldest,
            cards=count("cards", "1"),
            purge_acks_pending=count("purge_acks", "1"),
            blobs_pending=count("blobs", "state = 'pending'"),
            blobs_refused=count("blobs", "state = 'refused'"),
            wiped=self.meta("wiped_at") is not None,
            unsent_at_wipe=int(self.meta("unsent_at_wipe") or 0),
        )

    def wipe(self, wiped_at: str) -> None:
        """Forget everything but when the wipe happened and how many records it lost."""
        unsent = self._count("outbox", "state = 'queued'")
        with self.transaction():
            for table in ("outbox", "cards", "purge_acks", "blobs", "meta"):
                self._db.execute(f"DELETE FROM {table}")
            self.set_meta("wiped_at", wiped_at)
            self.set_meta("unsent_at_wipe", str(unsent))
        self._db.execute("VACUUM")

    def _count(self, table: str, where: str) -> int:
        return self._db.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}").fetchone()[0]


def _entry(row: sqlite3.Row) -> OutboxEntry:
    outcome = jsonlib.loads(row["outcome"]) if row["outcome"] else {}
    return OutboxEntry(
        id=row["id"],
        kind=row["kind"],
        visit_id=row["visit_id"],
        device_seq=row["device_seq"],
        recorded_at=row["recorded_at"],
        state=row["state"],
        status=row["status"],
        reason=row["reason"],
        flags=tuple(flag["code"] for flag in outcome.get("flags") or ()),
        id_verification=row["id_verification"],
        receipt=jsonlib.loads(row["receipt"]) if row["receipt"] else None,
        body=jsonlib.loads(row["body"]),
    )
