"""Downloading an attachment's bytes (a photo, a signature image): a disclosure, ledgered.

Only a blob that a stored record references can be downloaded, by a role whose disclosure
policy gives it `attachment_bytes` for compliance evidence (dispatchers by default). Before
the first byte leaves, one ledger entry per borrower the referencing records are about
names the fact `attachment_bytes` and the attachment itself as `attachment:<sha256>`, with
the case and visit of the first record that references it. An attachment no record
references, or one that is unknown, is 404 as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from schemas.common import SHA256_HEX
from server.clock import to_iso
from server.domain.disclosure import COMPLIANCE_EVIDENCE
from server.errors import Forbidden, InvalidInput, NotFound
from server.runtime import Caller, Runtime
from server.services import exposure
from server.storage import evidence as evidence_rows
from server.storage.connection import open_db, transaction

FACT = "attachment_bytes"


@dataclass(frozen=True)
class Download:
    """A blob cleared for sending: its metadata and where its bytes are."""

    sha256: str
    size: int
    content_type: str
    rowid: int


def attachment_fact(sha256: str) -> str:
    """The ledger field naming which attachment was sent."""
    return f"attachment:{sha256}"


def open_download(db: sqlite_utils.Database, rt: Runtime, caller: Caller, sha256: str) -> Download:
    """Clear a blob for download and ledger it, in one transaction; the bytes follow."""
    if not SHA256_HEX.match(sha256):
        raise InvalidInput("expected a SHA-256 as 64 lowercase hex digits", field="sha256")
    principal = caller.principal
    if principal is None or FACT not in rt.disclosure.allowed_fields(
        principal.role, COMPLIANCE_EVIDENCE
    ):
        raise Forbidden("your role may not download attachments")
    with transaction(db):
        meta = evidence_rows.blob_meta(db, sha256)
        records = evidence_rows.records_referencing(db, sha256) if meta else []
        if meta is None or not records:
            raise NotFound("no such attachment")
        first_by_borrower: dict[int, dict[str, Any]] = {}
        for record in records:
            first_by_borrower.setdefault(record["borrower_id"], record)
        exposure.record(
            db,
            [
                {
                    "occurred_at": to_iso(caller.now),
                    "user_id": principal.user_id,
                    "role": principal.role,
                    "device_id": principal.device_id,
                    "borrower_id": borrower_id,
                    "case_id": record["case_id"],
                    "visit_id": record["visit_id"],
                    "fields": {FACT, attachment_fact(sha256)},
                    "purpose": COMPLIANCE_EVIDENCE,
                    "endpoint": caller.endpoint,
                    "request_id": caller.request_id,
                    "outcome": "served",
                }
                for borrower_id, record in sorted(first_by_borrower.items())
            ],
        )
    return Download(sha256, meta["size"], meta["content_type"], meta["rowid"])


def stream(rt: Runtime, download: Download) -> Iterator[bytes]:
    """The blob's bytes in chunks, on a connection of its own: the response is sent after
    the request's connection closed."""
    db = open_db(rt.settings["DATABASE"])
    try:
        yield from evidence_rows.iter_blob(db, download.rowid)
    finally:
        db.conn.close()
