"""Ed25519 signatures over canonical bytes: what receipts, checkpoints and certificates share.

Each signed document builds its own message (see sync/receipts.py, server/domain/ledger.py,
server/domain/retention.py); this module names the key, signs, verifies and spells the
values every one of them carries, in one way:

- `key_id`: the first 16 hex characters of SHA-256 over the raw 32-byte public key, so a
  verifier can pick the right key after a rotation;
- the signature: its 64 bytes as base64url without padding; only that one spelling is read;
- timestamps: UTC to the second, `YYYY-MM-DDTHH:MM:SSZ`; only that one spelling is read, so
  no two texts verify as the same document.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

TIMESTAMP_SHAPE = "YYYY-MM-DDTHH:MM:SSZ"
_TIMESTAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_SIGNATURE_CHARS = 86  # 64 bytes in unpadded base64


class SignedFormError(ValueError):
    """A value of a signed document is not in the one canonical form that is signed."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short, stable name of a public key: 16 hex characters of SHA-256 over its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public half as SubjectPublicKeyInfo PEM text, to publish for verifiers."""
    public_key = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_key(public_key: str | bytes | Ed25519PublicKey) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM text or bytes; raises ValueError for anything else."""
    if isinstance(public_key, Ed25519PublicKey):
        return public_key
    pem = public_key.encode("ascii") if isinstance(public_key, str) else public_key
    loaded = serialization.load_pem_public_key(pem)
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    return loaded


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """An unencrypted Ed25519 private key from PEM; raises ValueError for anything else."""
    loaded = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError("the signing key must be an Ed25519 private key")
    return loaded


def sign(private_key: Ed25519PrivateKey, message: bytes) -> str:
    """The encoded signature of `message`."""
    return encode_signature(private_key.sign(message))


def verify(public_key: Ed25519PublicKey, message: bytes, signer_id: str, signature: str) -> bool:
    """True only if `signature` is this key's signature of `message` and names this key."""
    if signer_id != key_id(public_key):
        return False
    raw = decode_signature(signature)
    if raw is None:
        return False
    try:
        public_key.verify(raw, message)
    except InvalidSignature:
        return False
    return True


def encode_signature(raw: bytes) -> str:
    """Signature bytes as unpadded base64url."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_signature(text: object) -> bytes | None:
    """The 64 signature bytes, or None unless `text` is their one canonical base64url form."""
    if not isinstance(text, str) or len(text) != _SIGNATURE_CHARS:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "==")
    except (binascii.Error, ValueError):
        return None
    # Base64 leaves spare bits in the last character; re-encoding rejects altered ones.
    return raw if encode_signature(raw) == text else None


def format_timestamp(moment: datetime) -> str:
    """An aware datetime as UTC 'YYYY-MM-DDTHH:MM:SSZ', truncated to the second."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise SignedFormError("a signed timestamp needs a time zone")
    utc = moment.astimezone(UTC)
    # Formatted by hand: strftime does not zero-pad years below 1000 on every platform.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z"
    )


def read_timestamp(value: object, field: str) -> datetime:
    """The UTC instant of a timestamp written exactly as format_timestamp writes it."""
    text = read_text(value, field)
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise SignedFormError(f"{field} must be UTC '{TIMESTAMP_SHAPE}'")
    try:
        return datetime(*(int(part) for part in match.groups()), tzinfo=UTC)
    except ValueError:  # a month 13, a February 30th, ...
        raise SignedFormError(f"{field} must be UTC '{TIMESTAMP_SHAPE}'") from None


def read_key_id(value: object, field: str = "key_id") -> str:
    """A key id as key_id writes it: 16 lowercase hex characters."""
    text = read_text(value, field)
    if not _KEY_ID.fullmatch(text):
        raise SignedFormError(f"{field} must be 16 lowercase hex characters")
    return text


def read_text(value: object, field: str) -> str:
    """`value` if it is text."""
    if not isinstance(value, str):
        raise SignedFormError(f"{field} must be text")
    return value
