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


def stored_hashes(db: sqlite_utils.Database, hashes: Iterable[str]) -> set[str]:
    """The subset of `hashes` that have a blob."""
    wanted = sorted(set(hashes))
    found: set[str] = set()
    for start in range(0, len(wanted), _IN_BATCH):
        batch = wanted[start : start + _IN_BATCH]
        marks = ",".join("?" * len(batch))
        found.update(
            row[0]
            for row in db.execute(f"SELECT sha256 FROM blobs WHERE sha256 IN ({marks})", batch)
        )
    return found


def get_upload(db: sqlite_utils.Database, upload_id: str) -> Row | None:
    rows = list(db.query("SELECT * FROM blob_uploads WHERE id = ?", [upload_id]))
    return rows[0] if rows else None


def find_device_upload(db: sqlite_utils.Database, sha256: str, device_id: str) -> Row | None:
    """The unfinished upload of this blob by this device, if any (the newest)."""
    rows = list(
        db.query(
            "SELECT * FROM blob_uploads WHERE sha256 = ? AND device_id = ? "
            "ORDER BY created_at DESC, id LIMIT 1",
            [sha256, device_id],
        )
    )
    return rows[0] if rows else None


def find_any_upload(
    db: sqlite_utils.Database, sha256: str, prefer_device: str | None
) -> Row | None:
    """An unfinished upload of this blob: the given device's first, else the furthest along."""
    rows = list(
        db.query(
            "SELECT * FROM blob_uploads WHERE sha256 = ? "
            "ORDER BY device_id IS ? DESC, received DESC, id LIMIT 1",
            [sha256, prefer_device],
        )
    )
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
