"""Attachments: content-addressed blobs, uploaded whole or in resumable chunks.

A blob exists in `blobs` only once every byte arrived and its SHA-256 was verified, so
"stored" and "complete" are the same thing. An unfinished chunked upload lives in
`blob_uploads`/`blob_chunks`; each chunk is its own transaction, so a dropped connection
loses at most the chunk in flight and the client resumes from `received`.

A blob is the business of the agents who sent its bytes (`blob_owners`): only they see its
metadata or their own upload's progress, only their records may reference it, and to anyone
else it answers as if it did not exist -- an agent who knows a hash learns nothing from it,
and becomes an owner only by uploading the same bytes. Staff see a blob once a stored record
references it. The blobs a device sent that no record of its agent references yet count
against a per-device quota and expire after a while.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from schemas.common import SHA256_HEX
from server.clock import to_iso
from server.errors import (
    BeyondDeclaredSize,
    BlobQuotaExceeded,
    HashMismatch,
    InvalidInput,
    NotFound,
    OffsetMismatch,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from server.runtime import Caller, Runtime
from server.storage import attachments as attachment_rows
from server.storage.connection import transaction


@dataclass(frozen=True)
class BlobLimits:
    max_blob_bytes: int
    max_chunk_bytes: int
    single_upload_max_bytes: int
    content_types: frozenset[str]
    upload_idle_ttl_s: int
    unreferenced_quota_bytes: int
    unreferenced_ttl_s: int


def blob_limits(rt: Runtime) -> BlobLimits:
    """The limits in force, from the settings."""
    settings = rt.settings
    return BlobLimits(
        max_blob_bytes=settings["MAX_BLOB_BYTES"],
        max_chunk_bytes=settings["MAX_CHUNK_BYTES"],
        single_upload_max_bytes=settings["SINGLE_UPLOAD_MAX_BYTES"],
        content_types=frozenset(t.strip().lower() for t in settings["BLOB_CONTENT_TYPES"]),
        upload_idle_ttl_s=settings["UPLOAD_IDLE_TTL_S"],
        unreferenced_quota_bytes=settings["BLOB_QUOTA_UNREFERENCED_BYTES"],
        unreferenced_ttl_s=settings["BLOB_UNREFERENCED_TTL_S"],
    )


def new_upload_id() -> str:
    """A fresh, unguessable id for a resumable upload."""
    return "up_" + secrets.token_hex(16)


def usable_blobs(db: sqlite_utils.Database, agent_id: int, hashes: Iterable[str]) -> frozenset[str]:
    """Which of these blobs a record of this agent may reference: stored, verified and
    uploaded by the agent. Another agent's blob is missing as far as this one knows."""
    return frozenset(attachment_rows.owned_hashes(db, agent_id, hashes))


def note_references(db: sqlite_utils.Database, caller: Caller, referenced: Iterable[str]) -> None:
    """Mark blobs referenced by records the caller just stored (inside that transaction):
    they leave the device's quota and no longer expire."""
    user = _user(caller)
    if user is not None:
        attachment_rows.mark_referenced(db, user, referenced, to_iso(caller.now))


def sweep(db: sqlite_utils.Database, rt: Runtime, now: datetime) -> int:
    """Drop idle unfinished uploads and blobs left unreferenced past their time; how many
    blobs went. Runs with every upload, inside its transaction."""
    limits = blob_limits(rt)
    attachment_rows.delete_uploads_idle_since(
        db, to_iso(now - timedelta(seconds=limits.upload_idle_ttl_s))
    )
    return attachment_rows.expire_unreferenced(
        db, to_iso(now - timedelta(seconds=limits.unreferenced_ttl_s))
    )


def put_blob(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    sha256: str,
    content_type: str,
    data: bytes,
) -> tuple[dict[str, Any], bool]:
    """Store a whole blob; (metadata, True) when stored now, (metadata, False) if it was."""
    _check_sha(sha256)
    limits = blob_limits(rt)
    _check_content_type(limits, content_type)
    ceiling = min(limits.single_upload_max_bytes, limits.max_blob_bytes)
    if len(data) > ceiling:
        raise PayloadTooLarge(
            f"a single upload may carry at most {ceiling} bytes: use a chunked upload",
            field="body",
            limit=ceiling,
            max_blob_bytes=limits.max_blob_bytes,
        )
    if not data:
        raise InvalidInput("an attachment cannot be empty", field="body")
    _check_hash(sha256, hashlib.sha256(data).hexdigest())
    user = _user(caller)
    assert user is not None
    with transaction(db):
        sweep(db, rt, caller.now)
        mine = attachment_rows.get_owner(db, sha256, user)
        if mine is not None:
            return _blob_out(mine), False
        _check_quota(db, limits, caller, len(data))
        # Someone else may hold the same bytes: sending them makes this agent an owner too,
        # answered exactly as a first upload, so the answer tells nothing of the others.
        attachment_rows.insert_blob(db, _blob_row(caller, sha256, content_type, data))
        attachment_rows.insert_owner(db, _owner_row(caller, sha256, content_type))
        return _blob_out(attachment_rows.get_owner(db, sha256, user) or {}), True


def blob_status(db: sqlite_utils.Database, caller: Caller, sha256: str) -> dict[str, Any]:
    """A blob's metadata, or how far the caller's own upload got: for an agent, only a blob
    it uploaded; for staff, only a blob a stored record references. Anything else is 404,
    as a blob nobody uploaded is."""
    _check_sha(sha256)
    user, device = _user(caller), _device(caller)
    if caller.principal is not None and caller.principal.role == "agent":
        mine = attachment_rows.get_owner(db, sha256, user) if user is not None else None
        if mine is not None:
            return _blob_out(mine)
        upload = (
            attachment_rows.find_own_upload(db, sha256, user, device)
            if user is not None and device is not None
            else None
        )
        if upload is not None:
            return {**_upload_out(upload, complete=False), "created_at": None}
    elif attachment_rows.is_referenced(db, sha256):
        blob = attachment_rows.get_blob(db, sha256)
        if blob is not None:
            return _blob_out(blob)
    raise NotFound("no such attachment")


def start_upload(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    sha256: str,
    size: int,
    content_type: str,
    new_id: Callable[[], str] = new_upload_id,
) -> tuple[dict[str, Any], bool]:
    """Open a chunked upload; (state, True) when created, (state, False) when the blob is
    already complete or this device already has an unfinished upload of it (resume)."""
    _check_sha(sha256)
    limits = blob_limits(rt)
    _check_content_type(limits, content_type)
    if size > limits.max_blob_bytes:
        raise PayloadTooLarge(
            f"an attachment may be at most {limits.max_blob_bytes} bytes",
            field="size",
            limit=limits.max_blob_bytes,
        )
    now = to_iso(caller.now)
    user, device = _user(caller), _device(caller)
    assert user is not None and device is not None
    with transaction(db):
        sweep(db, rt, caller.now)
        owned = attachment_rows.get_owner(db, sha256, user)
        if owned is not None:
            return {**_blob_out(owned), "upload_id": None}, False
        # Stored by someone else or not at all, the same: this agent sends the bytes.
        mine = attachment_rows.find_own_upload(db, sha256, user, device)
        if mine is not None:
            if (mine["size"], mine["content_type"]) == (size, content_type):
                return _upload_out(mine, complete=False), False
            # A different declaration for the same content: the old one cannot be right.
            attachment_rows.delete_upload(db, mine["id"])
        _check_quota(db, limits, caller, size)
        upload = {
            "id": new_id(),
            "sha256": sha256,
            "size": size,
            "content_type": content_type,
            "created_at": now,
            "updated_at": now,
            "created_by": user,
            "device_id": device,
        }
        attachment_rows.insert_upload(db, upload)
        return _upload_out({**upload, "received": 0}, complete=False), True


def upload_state(db: sqlite_utils.Database, caller: Caller, upload_id: str) -> dict[str, Any]:
    """An unfinished upload of the caller's device: where to resume."""
    return _upload_out(_own_upload(db, caller, upload_id), complete=False)


def append_chunk(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    upload_id: str,
    offset: int,
    data: bytes,
) -> dict[str, Any]:
    """Add one chunk at the resume point, in its own transaction; the last one verifies the
    hash and stores the blob. A mismatch discards the upload so the client starts over."""
    limits = blob_limits(rt)
    if len(data) > limits.max_chunk_bytes:
        raise PayloadTooLarge(
            f"a chunk may be at most {limits.max_chunk_bytes} bytes",
            field="body",
            limit=limits.max_chunk_bytes,
        )
    if not data:
        raise InvalidInput("a chunk cannot be empty", field="body")
    failure: HashMismatch | None = None
    with transaction(db):
        upload = _own_upload(db, caller, upload_id)
        received, size = upload["received"], upload["size"]
        if offset != received:
            raise OffsetMismatch(
                f"this upload resumes at offset {received}, not {offset}",
                field="Upload-Offset",
                received=received,
            )
        if offset + len(data) > size:
            raise BeyondDeclaredSize(
                f"the chunk ends at {offset + len(data)}, past the declared size {size}",
                field="body",
                size=size,
                received=received,
            )
        if attachment_rows.get_owner(db, upload["sha256"], upload["created_by"]) is not None:
            # This agent's upload from another device finished it meanwhile: nothing to send.
            attachment_rows.delete_upload(db, upload_id)
            return {**_upload_out(upload, complete=True), "received": size}
        attachment_rows.append_chunk(db, upload_id, offset, data, to_iso(caller.now))
        received += len(data)
        if received < size:
            return {**_upload_out(upload, complete=False), "received": received}
        blob = b"".join(attachment_rows.upload_chunks(db, upload_id))
        attachment_rows.delete_upload(db, upload_id)
        actual = hashlib.sha256(blob).hexdigest()
        if actual == upload["sha256"]:
            attachment_rows.insert_blob(
                db, _blob_row(caller, upload["sha256"], upload["content_type"], blob)
            )
            attachment_rows.insert_owner(
                db, _owner_row(caller, upload["sha256"], upload["content_type"])
            )
            return {**_upload_out(upload, complete=True), "received": size}
        failure = _hash_mismatch(upload["sha256"], actual, discarded=True)
    # Outside the transaction: the discarded upload stays discarded.
    raise failure


def _own_upload(db: sqlite_utils.Database, caller: Caller, upload_id: str) -> dict[str, Any]:
    upload = attachment_rows.get_upload(db, upload_id)
    device = _device(caller)
    if (
        upload is None
        or device is None
        or upload["device_id"] != device
        or upload["created_by"] != _user(caller)
    ):
        raise NotFound("no such upload on this device")
    return upload


def _check_sha(sha256: str) -> None:
    if not SHA256_HEX.match(sha256):
        raise InvalidInput("expected a SHA-256 as 64 lowercase hex digits", field="sha256")


def _check_quota(
    db: sqlite_utils.Database, limits: BlobLimits, caller: Caller, adding: int
) -> None:
    device = _device(caller)
    if device is None:
        return
    held = attachment_rows.unreferenced_bytes(db, device)
    if held + adding > limits.unreferenced_quota_bytes:
        raise BlobQuotaExceeded(
            "this device holds too many attachments no record references yet: push the "
            "records that reference them, then upload more",
            field="size",
            quota=limits.unreferenced_quota_bytes,
            held=held,
            adding=adding,
        )


def _check_content_type(limits: BlobLimits, content_type: str) -> None:
    if content_type not in limits.content_types:
        raise UnsupportedMediaType(
            f"attachments may be {', '.join(sorted(limits.content_types))}",
            field="content_type",
            allowed=sorted(limits.content_types),
        )


def _check_hash(expected: str, actual: str) -> None:
    if actual != expected:
        raise _hash_mismatch(expected, actual, discarded=False)


def _hash_mismatch(expected: str, actual: str, *, discarded: bool) -> HashMismatch:
    return HashMismatch(
        "the bytes received do not hash to the SHA-256 in the path",
        field="sha256",
        expected=expected,
        actual=actual,
        upload_discarded=discarded,
    )


def _blob_row(caller: Caller, sha256: str, content_type: str, data: bytes) -> dict[str, Any]:
    return {
        "sha256": sha256,
        "size": len(data),
        "content_type": content_type,
        "data": data,
        "created_at": to_iso(caller.now),
        "uploaded_by": _user(caller),
    }


def _owner_row(caller: Caller, sha256: str, content_type: str) -> dict[str, Any]:
    return {
        "sha256": sha256,
        "user_id": _user(caller),
        "device_id": _device(caller),
        "content_type": content_type,
        "created_at": to_iso(caller.now),
    }


def _blob_out(blob: dict[str, Any]) -> dict[str, Any]:
    """A blob's metadata: the reader's own upload of it (type and time) for its uploaders."""
    return {
        "sha256": blob["sha256"],
        "size": blob["size"],
        "content_type": blob["content_type"],
        "complete": True,
        "received": blob["size"],
        "created_at": blob["created_at"],
    }


def _upload_out(upload: dict[str, Any], *, complete: bool) -> dict[str, Any]:
    return {
        "upload_id": upload["id"],
        "sha256": upload["sha256"],
        "size": upload["size"],
        "content_type": upload["content_type"],
        "received": upload["received"],
        "complete": complete,
    }


def _device(caller: Caller) -> str | None:
    return caller.principal.device_id if caller.principal else None


def _user(caller: Caller) -> int | None:
    return caller.principal.user_id if caller.principal else None
