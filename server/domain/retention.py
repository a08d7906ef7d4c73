"""Retention rules per kind of data (SPEC section 6) and signed purge certificates.

A purge certificate is signed with the server's Ed25519 key over these two lines, UTF-8,
joined by "\\n":

    doorstep-purge-certificate-v1
    {canonical JSON of the certificate's fields except the signature}

where canonical JSON has sorted keys, no spaces and non-ASCII kept as UTF-8, and the fields
are created_at, kind, rule, cutoff (both UTC 'YYYY-MM-DDTHH:MM:SSZ'), removed_count,
checkpoint_id, details and key_id. The key id, the signature's encoding and the timestamps'
one spelling are those of sync/signing.py. A certificate names what was removed by kind and
count, never by value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sync.signing import format_timestamp, key_id, sign, verify

CERTIFICATE_VERSION = "doorstep-purge-certificate-v1"

LEDGER, EVIDENCE, PERSONAL = "exposure_ledger", "compliance_evidence", "personal_data"
ATTACHMENTS, NOTES = "attachments", "free_text_notes"
KINDS = (LEDGER, EVIDENCE, PERSONAL, ATTACHMENTS, NOTES)

PURGED_NAME = "[purged]"
# What a free-text note inside a stored record's body becomes (see NOTE_COLUMNS below).
REDACTED_NOTE = "[redacted]"
# Borrower columns that hold personal data, and what each becomes once purged; ids stay.
PERSONAL_COLUMNS: dict[str, Any] = {
    "full_name": PURGED_NAME,
    "national_id": None,
    "phones": "[]",
    "home_address": None,
    "home_lat": None,
    "home_lon": None,
    "work_address": None,
    "employer": None,
    "date_of_birth": None,
    "contacts": "[]",
    "income": None,
}


@dataclass(frozen=True)
class RetentionRules:
    """How long each kind of data is kept; a legal hold on a case stops all three clocks.

    The periods and the cap are settings; their defaults are in server/config.py.
    """

    ledger_days: int
    evidence_days: int
    personal_days: int
    ledger_cap: int  # entries removed per run at most (0: no limit)
    # Attachments no stored record references, and unfinished uploads (the upload settings).
    unreferenced_blob_s: int = 7 * 24 * 3600
    idle_upload_s: int = 7 * 24 * 3600

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> RetentionRules:
        """The rules in force."""
        return cls(
            ledger_days=int(settings["LEDGER_RETENTION_DAYS"]),
            evidence_days=int(settings["EVIDENCE_RETENTION_DAYS"]),
            personal_days=int(settings["PERSONAL_DATA_RETENTION_DAYS"]),
            ledger_cap=int(settings["PURGE_MAX_LEDGER_ENTRIES"]),
            unreferenced_blob_s=int(settings["BLOB_UNREFERENCED_TTL_S"]),
            idle_upload_s=int(settings["UPLOAD_IDLE_TTL_S"]),
        )

    def cutoffs(self, now: datetime) -> dict[str, datetime]:
        """Data older than its kind's cutoff is due."""
        return {
            LEDGER: now - timedelta(days=self.ledger_days),
            EVIDENCE: now - timedelta(days=self.evidence_days),
            PERSONAL: now - timedelta(days=self.personal_days),
            # Attachments follow the evidence clock of the records that reference them ...
            ATTACHMENTS: now - timedelta(days=self.evidence_days),
            # ... notes the personal-data clock of the borrower they are about.
            NOTES: now - timedelta(days=self.personal_days),
        }

    def attachment_cutoffs(self, now: datetime) -> dict[str, datetime]:
        """The clocks of bytes no stored record references: blobs and unfinished uploads."""
        return {
            "unreferenced_before": now - timedelta(seconds=self.unreferenced_blob_s),
            "uploads_idle_before": now - timedelta(seconds=self.idle_upload_s),
        }

    def rule_text(self, kind: str) -> str:
        """The rule a certificate cites, in words."""
        return {
            LEDGER: (
                f"exposure-ledger entries older than {self.ledger_days} days "
                "(LEDGER_RETENTION_DAYS; CNIL 2021 logging recommendation), removed as a prefix "
                "of the chain cut at a signed checkpoint; the first entry about a borrower of a "
                "case under legal hold, and every later entry, are kept"
            ),
            EVIDENCE: (
                f"sync records and agreement receipts of cases whose last collection activity "
                f"is older than {self.evidence_days} days (EVIDENCE_RETENTION_DAYS; Reg F "
                "1006.100, PIPL art. 56); cases under legal hold are kept"
            ),
            PERSONAL: (
                f"personal data of borrowers whose cases are all closed for more than "
                f"{self.personal_days} days (PERSONAL_DATA_RETENTION_DAYS; PIPL art. 19, GDPR "
                "art. 5(1)(e)); ids are kept; borrowers with a case under legal hold are kept"
            ),
            ATTACHMENTS: (
                "attachments (photos, signature images) whose last referencing record was "
                f"removed under the evidence clock ({self.evidence_days} days, "
                "EVIDENCE_RETENTION_DAYS), removed in the same run; attachments no stored "
                f"record references, uploaded more than {self.unreferenced_blob_s} s before "
                f"(BLOB_UNREFERENCED_TTL_S); unfinished uploads idle for more than "
                f"{self.idle_upload_s} s (UPLOAD_IDLE_TTL_S); a blob a kept record references "
                "is kept, so a legal hold keeps its case's attachments"
            ),
            NOTES: (
                "free-text notes about borrowers whose cases are all closed for more than "
                f"{self.personal_days} days (PERSONAL_DATA_RETENTION_DAYS; PIPL art. 19, GDPR "
                "art. 5(1)(e)): emptied in staff-written columns, replaced by "
                f"'{REDACTED_NOTE}' in stored records' bodies (their digests and receipts "
                "unchanged); borrowers with a case under legal hold are kept"
            ),
        }[kind]


def certificate_message(fields: Mapping[str, Any]) -> bytes:
    """The canonical bytes a purge certificate signs (every field but the signature)."""
    signed = {k: v for k, v in fields.items() if k not in ("signature", "id")}
    body = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{CERTIFICATE_VERSION}\n{body}".encode()


def sign_certificate(
    private_key: Ed25519PrivateKey,
    *,
    kind: str,
    rule: str,
    cutoff: datetime,
    removed_count: int,
    checkpoint_id: int | None,
    details: Mapping[str, Any],
    created_at: datetime,
) -> dict[str, Any]:
    """A signed purge certificate, as stored and served."""
    fields: dict[str, Any] = {
        "created_at": format_timestamp(created_at),
        "kind": kind,
        "rule": rule,
        "cutoff": format_timestamp(cutoff),
        "removed_count": removed_count,
        "checkpoint_id": checkpoint_id,
        "details": dict(details),
        "key_id": key_id(private_key.public_key()),
    }
    fields["signature"] = sign(private_key, certificate_message(fields))
    return fields


def certificate_is_signed(public_key: Ed25519PublicKey, certificate: Mapping[str, Any]) -> bool:
    """True only if this key signed exactly these certificate fields."""
    return verify(
        public_key,
        certificate_message(certificate),
        certificate.get("key_id", ""),
        certificate.get("signature", ""),
    )
