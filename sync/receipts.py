"""Ed25519 receipts for stored agreements, verifiable offline with the server's public key.

The signed message is these four lines, UTF-8, joined by "\\n", no trailing newline:

    doorstep-receipt-v1
    {key_id}
    {agreement_id}
    {content_hash}
    {received_at as UTC YYYY-MM-DDTHH:MM:SSZ}

`key_id` is the first 16 hex characters of SHA-256 over the raw 32-byte public key, so a
verifier can pick the right key after a rotation. The signature travels as base64url
without padding; only the one canonical spelling of the 64 bytes is accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .canonical import CanonicalFormError, canonical_sha256, canonical_uuid, parse_aware_datetime

RECEIPT_VERSION = "doorstep-receipt-v1"
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"


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
            "received_at": self.received_at.astimezone(UTC).strftime(_TIMESTAMP),
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
                received_at=_exact_timestamp(data.get("received_at")),
                key_id=_exact_key_id(data.get("key_id")),
                signature=_text(data.get("signature"), "signature"),
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
    stamp = received_at.astimezone(UTC).strftime(_TIMESTAMP)
    lines = (RECEIPT_VERSION, key_id, agreement_id, content_hash, stamp)
    return "\n".join(lines).encode("utf-8")


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short, stable name of a public key: 16 hex characters of SHA-256 over its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(private_key: Ed25519PrivateKey) -> str:
    """The public half as SubjectPublicKeyInfo PEM text, to publish for verifiers."""
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


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
    signature = private_key.sign(receipt_message(kid, agreement_id, content_hash, received_at))
    return Receipt(
        agreement_id=agreement_id,
        content_hash=content_hash,
        received_at=received_at,
        key_id=kid,
        signature=base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii"),
    )


def load_public_key(public_key: str | bytes | Ed25519PublicKey) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM text or bytes; raises ValueError for anything else."""
    if isinstance(public_key, Ed25519PublicKey):
        return public_key
    pem = public_key.encode("ascii") if isinstance(public_key, str) else public_key
    loaded = serialization.load_pem_public_key(pem)
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    return loaded


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
    if receipt.key_id != key_id(public_key):
        return False
    signature = _decode_signature(receipt.signature)
    if signature is None:
        return False
    try:
        public_key.verify(signature, receipt.message())
    except InvalidSignature:
        return False
    return True


def _decode_signature(text: str) -> bytes | None:
    """The 64 signature bytes, or None unless `text` is their one canonical base64url form."""
    if not isinstance(text, str) or len(text) != 86:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "==")
    except (binascii.Error, ValueError):
        return None
    # Base64 leaves spare bits in the last character; re-encoding rejects altered ones.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
        return None
    return raw


def _exact_uuid(value: object) -> str:
    text = _text(value, "agreement_id")
    if canonical_uuid("agreement_id", text) != text:
        raise ValueError("agreement_id must be a lowercase hyphenated UUID")
    return text


def _exact_sha256(value: object) -> str:
    text = _text(value, "content_hash")
    if canonical_sha256("content_hash", text) != text:
        raise ValueError("content_hash must be 64 lowercase hex characters")
    return text


def _exact_timestamp(value: object) -> datetime:
    # Only the one spelling that is signed, so no two texts verify as the same receipt.
    text = _text(value, "received_at")
    try:
        moment = datetime.strptime(text, _TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        moment = None
    # strptime also takes single-digit fields; the round trip insists on the padded form.
    if moment is None or moment.strftime(_TIMESTAMP) != text:
        raise ValueError("received_at must be UTC 'YYYY-MM-DDTHH:MM:SSZ'")
    return moment


def _exact_key_id(value: object) -> str:
    text = _text(value, "key_id")
    if not _KEY_ID.fullmatch(text):
        raise ValueError("key_id must be 16 lowercase hex characters")
    return text


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field} must be text")
    return value
