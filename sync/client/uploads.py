"""Attachment and signature uploads: whole blobs, or resumable chunks for large ones.

A blob is uploaded before the records that refer to it are pushed. A refused blob (size,
type or hash) is never resent; an upload session the server forgot starts over. When the
device holds as many unreferenced blobs as the server allows (409 `blob_quota_exceeded`),
uploading stops for now: pushing the records that reference the blobs already sent frees the
room, and their retry for the rest brings the uploads back.
"""

from __future__ import annotations

from .protocol import SyncResult
from .session import Session
from .store import LocalStore, PendingBlob
from .transport import RequestRefused, TransportResponse

# Blobs above this go through the resumable chunked upload, in chunks of this size.
CHUNK_BYTES = 1024 * 1024
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"%PDF-", "application/pdf"),
)


def sniff_content_type(data: bytes) -> str:
    """The content type of an image or PDF, from its first bytes."""
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise ValueError("unknown blob type: pass content_type (image/png, image/jpeg, ...)")


def upload_pending_blobs(store: LocalStore, session: Session, result: SyncResult) -> None:
    """Upload every pending blob, counting in `result` those the server now holds."""
    for blob in store.pending_blobs():
        data = store.blob_data(blob.sha256)
        if blob.size > CHUNK_BYTES:
            response = _upload_chunked(store, session, blob, data)
        else:
            response = session.request(
                "PUT",
                f"/attachments/{blob.sha256}",
                data=data,
                headers={"Content-Type": blob.content_type},
            )
        if response is None:
            continue  # A chunked upload that is not complete yet resumes next time.
        if response.status in (200, 201):
            store.set_blob_state(blob.sha256, "uploaded")
            result.blobs_uploaded += 1
        elif response.status in (400, 413, 415, 422):
            # Size, type or hash refused: resending the same bytes cannot succeed.
            reason = f"{response.error_code}: {response.error_message}"
            store.set_blob_state(blob.sha256, "refused", reason)
        elif response.status == 404:
            store.set_blob_state(blob.sha256, "pending")  # The session expired: start over.
        elif response.status == 409 and response.error_code == "blob_quota_exceeded":
            return  # Kept pending: push first, upload the rest on the retry.
        else:
            raise RequestRefused(response.status, response.error_code, response.error_message)


def _upload_chunked(
    store: LocalStore, session: Session, blob: PendingBlob, data: bytes
) -> TransportResponse | None:
    """Resumable upload: open (or resume) a session, then send chunks from the offset
    the server confirmed. None means not complete yet."""
    upload_id = blob.upload_id
    state = session.request("GET", f"/attachments/uploads/{upload_id}") if upload_id else None
    if state is None or state.status != 200:
        state = session.request(
            "POST",
            f"/attachments/{blob.sha256}/uploads",
            json={"size": len(data), "content_type": blob.content_type},
        )
        if state.status not in (200, 201):
            return state
        upload_id = state.body["upload_id"]
        store.set_upload_id(blob.sha256, upload_id)
    received, complete = int(state.body.get("received", 0)), bool(state.body.get("complete"))
    for _ in range(3 * (len(data) // CHUNK_BYTES + 2)):
        if complete:
            return state
        if received >= len(data):
            return None  # Every byte is there but the server has not finished verifying.
        state = session.request(
            "PATCH",
            f"/attachments/uploads/{upload_id}",
            data=data[received : received + CHUNK_BYTES],
            headers={"Upload-Offset": str(received), "Content-Type": "application/octet-stream"},
        )
        if state.status == 409 and state.error_code == "offset_mismatch":
            # An earlier copy of a chunk landed after all: go on from where the server is.
            received = int(state.error_details["received"])
            if received >= len(data):
                state = session.request("GET", f"/attachments/uploads/{upload_id}")
                complete = state.status == 200 and bool(state.body.get("complete"))
            continue
        if state.status != 200:
            return state
        received, complete = int(state.body["received"]), bool(state.body["complete"])
    return None
