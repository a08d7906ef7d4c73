"""Content-addressed blobs and the chunks of resumable uploads."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import sqlite_utils

Row = dict[str, Any]

_BLOB_META = "sha256, size, content_type, created_at, uploaded_by"
_IN_BATCH = 500


def get_blob(db: sqlite_utils.Database, sha256: str) -> Row | None:
    """A stored blob's metadata, without its bytes."""
    rows = list(db.query(f"SELECT {_BLOB_META} FROM blobs WHERE sha256 = ?", [sha256]))
    return rows[0] if rows else None


def insert_blob(db: sqlite_utils.Database, blob: Row) -> bool:
    """Store a blob unless one with this hash exists; True when this call stored it."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO blobs (sha256, size, content_type, data, created_at, uploaded_by) "
        "VALUES (:sha256, :size, :content_type, :data, :created_at, :uploaded_by)",
        blob,
    )
    return cursor.rowcount == 1


def get_upload(db: sqlite_utils.Database, upload_id: str) -> Row | None:
    rows = list(db.query("SELECT * FROM blob_uploads WHERE id = ?", [upload_id]))
    return rows[0] if rows else None


def insert_upload(db: sqlite_utils.Database, upload: Row) -> None:
    db.execute(
        "INSERT INTO blob_uploads (id, sha256, size, content_type, received, created_at, "
        "updated_at, created_by, device_id) VALUES (:id, :sha256, :size, :content_type, 0, "
        ":created_at, :updated_at, :created_by, :device_id)",
        upload,
    )


def append_chunk(
    db: sqlite_utils.Database, upload_id: str, offset: int, data: bytes, now: str
) -> bool:
    """Add the chunk at `offset` and advance `received`, only if `offset` is the resume point."""
    cursor = db.execute(
        "UPDATE blob_uploads SET received = received + ?, updated_at = ? "
        "WHERE id = ? AND received = ?",
        [len(data), now, upload_id, offset],
    )
    if cursor.rowcount != 1:
        return False
    db.execute(
        "INSERT INTO blob_chunks (upload_id, offset, data) VALUES (?, ?, ?)",
        [upload_id, offset, data],
    )
    return True


def upload_chunks(db: sqlite_utils.Database, upload_id: str) -> Iterator[bytes]:
    """The chunks of an upload in byte order."""
    for row in db.execute(
        "SELECT data FROM blob_chunks WHERE upload_id = ? ORDER BY offset", [upload_id]
    ):
        yield bytes(row[0])


def delete_upload(db: sqlite_utils.Database, upload_id: str) -> None:
    db.execute("DELETE FROM blob_chunks WHERE upload_id = ?", [upload_id])
    db.execute("DELETE FROM blob_uploads WHERE id = ?", [upload_id])


def delete_uploads_idle_since(db: sqlite_utils.Database, before: str) -> int:
    """Drop uploads (and their chunks) untouched since `before`; how many were dropped."""
    stale = [
        row[0] for row in db.execute("SELECT id FROM blob_uploads WHERE updated_at < ?", [before])
    ]
    for upload_id in stale:
        delete_upload(db, upload_id)
    return len(stale)


def get_owner(db: sqlite_utils.Database, sha256: str, user_id: int) -> Row | None:
    """This agent's ownership of a stored blob (it sent the bytes), joined to the blob."""
    rows = list(
        db.query(
            "SELECT o.sha256, b.size, o.content_type, o.created_at, o.referenced_at "
            "FROM blob_owners o JOIN blobs b ON b.sha256 = o.sha256 "
            "WHERE o.sha256 = ? AND o.user_id = ?",
            [sha256, user_id],
        )
    )
    return rows[0] if rows else None


def insert_owner(db: sqlite_utils.Database, owner: Row) -> bool:
    """Record that an agent sent a blob's bytes, unless it already had; True when new."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO blob_owners (sha256, user_id, device_id, content_type, "
        "created_at) VALUES (:sha256, :user_id, :device_id, :content_type, :created_at)",
        owner,
    )
    return cursor.rowcount == 1


def owned_hashes(db: sqlite_utils.Database, user_id: int, hashes: Iterable[str]) -> set[str]:
    """The subset of `hashes` stored and uploaded by this agent."""
    wanted = sorted(set(hashes))
    found: set[str] = set()
    for start in range(0, len(wanted), _IN_BATCH):
        batch = wanted[start : start + _IN_BATCH]
        marks = ",".join("?" * len(batch))
        found.update(
            row[0]
            for row in db.execute(
                f"SELECT sha256 FROM blob_owners WHERE user_id = ? AND sha256 IN ({marks})",
                [user_id, *batch],
            )
        )
    return found


def mark_referenced(
    db: sqlite_utils.Database, user_id: int, hashes: Iterable[str], now: str
) -> None:
    """Note that a stored record of this agent references these blobs (first time kept)."""
    wanted = sorted(set(hashes))
    for start in range(0, len(wanted), _IN_BATCH):
        batch = wanted[start : start + _IN_BATCH]
        marks = ",".join("?" * len(batch))
        db.execute(
            "UPDATE blob_owners SET referenced_at = ? WHERE user_id = ? "
            f"AND referenced_at IS NULL AND sha256 IN ({marks})",
            [now, user_id, *batch],
        )


def is_referenced(db: sqlite_utils.Database, sha256: str) -> bool:
    """True when a stored record references the blob."""
    return (
        db.execute(
            "SELECT 1 FROM blob_owners WHERE sha256 = ? AND referenced_at IS NOT NULL LIMIT 1",
            [sha256],
        ).fetchone()
        is not None
    )


def unreferenced_bytes(
    db: sqlite_utils.Database, device_id: str, except_upload: str | None = None
) -> int:
    """Bytes a device holds that no record references yet: its blobs no record of their
    uploader references, plus the declared size of its unfinished uploads."""
    blobs = db.execute(
        "SELECT COALESCE(SUM(b.size), 0) FROM blob_owners o JOIN blobs b ON b.sha256 = o.sha256 "
        "WHERE o.device_id = ? AND o.referenced_at IS NULL",
        [device_id],
    ).fetchone()[0]
    uploads = db.execute(
        "SELECT COALESCE(SUM(size), 0) FROM blob_uploads WHERE device_id = ? AND id IS NOT ?",
        [device_id, except_upload],
    ).fetchone()[0]
    return int(blobs) + int(uploads)


def expire_unreferenced(db: sqlite_utils.Database, before: str) -> int:
    """Forget uploads of blobs that no record referenced since `before`, and delete the blobs
    no agent holds any more; how many blobs were deleted."""
    due = [
        row[0]
        for row in db.execute(
            "SELECT DISTINCT sha256 FROM blob_owners "
            "WHERE referenced_at IS NULL AND created_at < ?",
            [before],
        )
    ]
    if not due:
        return 0
    db.execute("DELETE FROM blob_owners WHERE referenced_at IS NULL AND created_at < ?", [before])
    deleted = 0
    for start in range(0, len(due), _IN_BATCH):
        batch = due[start : start + _IN_BATCH]
        marks = ",".join("?" * len(batch))
        cursor = db.execute(
            f"DELETE FROM blobs WHERE sha256 IN ({marks}) "
            "AND NOT EXISTS (SELECT 1 FROM blob_owners o WHERE o.sha256 = blobs.sha256) "
            # A stored record's blob is evidence, whoever uploaded it (a record from before
            # owners were kept may reference another agent's upload): the purge decides.
            "AND NOT EXISTS (SELECT 1 FROM blob_references r WHERE r.sha256 = blobs.sha256)",
            batch,
        )
        deleted += cursor.rowcount
    return deleted


def find_own_upload(
    db: sqlite_utils.Database, sha256: str, user_id: int, device_id: str
) -> Row | None:
    """This agent's unfinished upload of the blob from this device, if any (the newest)."""
    rows = list(
        db.query(
            "SELECT * FROM blob_uploads WHERE sha256 = ? AND created_by = ? AND device_id = ? "
            "ORDER BY created_at DESC, id LIMIT 1",
            [sha256, user_id, device_id],
        )
    )
    return rows[0] if rows else None
