"""Ed25519 receipts for stored agreements, verifiable offline with the server's public key.

The signed message is these five lines, UTF-8, joined by "\\n", no trailing newline:

    doorstep-receipt-v1
    {key_id}
    {agreement_id}
    {content_hash}
    {received_at as UTC YYYY-MM-DDTHH:MM:SSZ}

The key id, the signature's encoding and the timestamp's one spelling are those of
sync/signing.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .canonical import CanonicalFormError, canonical_sha256, canonical_uuid, parse_aware_datetime
from .signing import (
    format_timestamp,
    key_id,
    load_public_key,
    read_key_id,
    read_text,
    read_timestamp,
    sign,
    verify,
)

RECEIPT_VERSION = "doorstep-receipt-v1"


@dataclass(frozen=True)
class Receipt:
    """The server's signed statement that it stored an agreement with this hash at this time."""

    agreement_id: str
    content_hash: str
    received_at: datetime
    key_id: str
    signature: str

    def to_dict(self) -> dict[str, str]:
        """The wire form: every value is text."""
        return {
            "version": RECEIPT_VERSION,
            "agreement_id": self.agreement_id,
            "content_hash": self.content_hash,
            "received_at": format_timestamp(self.received_at),
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Receipt:
        """Read the wire form; raises ValueError when a field is missing or malformed."""
        version = data.get("version", RECEIPT_VERSION)
        if version != RECEIPT_VERSION:
            raise ValueError(f"unsupported receipt version {version!r}")
        try:
            return cls(
                agreement_id=_exact_uuid(data.get("agreement_id")),
                content_hash=_exact_sha256(data.get("content_hash")),
                received_at=read_timestamp(data.get("received_at"), "received_at"),
                key_id=read_key_id(data.get("key_id")),
                signature=read_text(data.get("signature"), "signature"),
            )
        except CanonicalFormError as error:
            raise ValueError(str(error)) from None

    def message(self) -> bytes:
        """The exact bytes the signature covers."""
        return receipt_message(self.key_id, self.agreement_id, self.content_hash, self.received_at)


def receipt_message(
    key_id: str, agreement_id: str, content_hash: str, received_at: datetime
) -> bytes:
    """The canonical byte string a receipt signs."""
    lines = (RECEIPT_VERSION, key_id, agreement_id, content_hash, format_timestamp(received_at))
    return "\n".join(lines).encode("utf-8")


def sign_receipt(
    private_key: Ed25519PrivateKey, agreement_id: str, content_hash: str, received_at: datetime
) -> Receipt:
    """Sign (agreement id, content hash, received at); received_at is truncated to the second."""
    try:
        agreement_id = canonical_uuid("agreement_id", agreement_id)
        content_hash = canonical_sha256("content_hash", content_hash)
        received_at = parse_aware_datetime("received_at", received_at)
    except CanonicalFormError as error:
        raise ValueError(str(error)) from None
    # The receipt holds exactly the instant its text names, so to_dict/from_dict round-trips.
    received_at = received_at.astimezone(UTC).replace(microsecond=0)
    kid = key_id(private_key.public_key())
    return Receipt(
        agreement_id=agreement_id,
        content_hash=content_hash,
        received_at=received_at,
        key_id=kid,
        signature=sign(private_key, receipt_message(kid, agreement_id, content_hash, received_at)),
    )


def verify_receipt(
    public_key_pem_or_key: str | bytes | Ed25519PublicKey, receipt: Receipt | Mapping[str, Any]
) -> bool:
    """True only if the receipt was signed by this key over exactly these values.

    A key that cannot be loaded raises ValueError: that is the caller's mistake, not a
    forged receipt.
    """
    public_key = load_public_key(public_key_pem_or_key)
    if not isinstance(receipt, Receipt):
        try:
            receipt = Receipt.from_dict(receipt)
        except ValueError:
            return False
    return verify(public_key, receipt.message(), receipt.key_id, receipt.signature)


def _exact_uuid(value: object) -> str:
    text = read_text(value, "agreement_id")
    if canonical_uuid("agreement_id", text) != text:
        raise ValueError("agreement_id must be a lowercase hyphenated UUID")
    return text


def _exact_sha256(value: object) -> str:
    text = read_text(value, "content_hash")
    if canonical_sha256("content_hash", text) != text:
        raise ValueError("content_hash must be 64 lowercase hex characters")
    return text
