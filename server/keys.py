"""The server's Ed25519 signing key: tokens, agreement receipts, ledger checkpoints."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from server.config import is_url
from sync.signing import key_id, load_private_key, public_key_pem

log = logging.getLogger(__name__)


class MissingSigningKey(RuntimeError):
    """Production mode was asked to start without a configured signing key."""


@dataclass(frozen=True)
class SigningKeys:
    private_key: Ed25519PrivateKey
    public_key: Ed25519PublicKey
    key_id: str
    generated: bool

    def public_pem(self) -> str:
        """The public key as PEM text, for verifiers."""
        return public_key_pem(self.public_key)


def load_signing_keys(settings: Mapping[str, Any]) -> SigningKeys:
    """Load the configured key; outside production, generate and keep one beside the db."""
    pem = settings["SIGNING_KEY"]
    path = settings["SIGNING_KEY_FILE"]
    generated = False
    if pem:
        data = pem.encode()
    elif path:
        data = Path(path).read_bytes()
    elif settings["DOORSTEP_ENV"] == "production":
        raise MissingSigningKey(
            "DOORSTEP_SIGNING_KEY or DOORSTEP_SIGNING_KEY_FILE must be set in production"
        )
    else:
        data, generated = _development_key(settings)
    try:
        private_key = load_private_key(data)
    except ValueError as error:
        raise MissingSigningKey(str(error)) from None
    public_key = private_key.public_key()
    # One name for the key everywhere: JWT kid, receipts, checkpoints, certificates.
    return SigningKeys(private_key, public_key, key_id=key_id(public_key), generated=generated)


def derive_key(keys: SigningKeys, purpose: bytes) -> bytes:
    """A secret for one purpose (e.g. cursor MACs), derived from the signing key."""
    raw = keys.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return hmac.new(raw, purpose, hashlib.sha256).digest()


def state_dir(settings: Mapping[str, Any]) -> str | None:
    """Where the store's local files go (development key, checkpoint files); None for an
    in-memory SQLite store."""
    if settings["STATE_DIR"]:
        return str(settings["STATE_DIR"])
    database = str(settings["DATABASE"])
    if is_url(database):
        return os.path.abspath("instance")
    return None if database == ":memory:" else os.path.dirname(database)


def development_key_path(settings: Mapping[str, Any]) -> Path:
    """Where development keeps its generated key: beside the SQLite file, or in the state
    directory for PostgreSQL."""
    database = settings["DATABASE"]
    if is_url(database):
        return Path(state_dir(settings) or "instance") / "postgresql.signing-key.pem"
    return Path(database).with_suffix(".signing-key.pem")


def _development_key(settings: Mapping[str, Any]) -> tuple[bytes, bool]:
    """A key kept next to the database, so restarts keep tokens and receipts valid."""
    if settings["DATABASE"] == ":memory:":
        return _new_pem(), True
    key_path = development_key_path(settings)
    if key_path.exists():
        return key_path.read_bytes(), False
    key_path.parent.mkdir(parents=True, exist_ok=True)
    data = _new_pem()
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker won the race; use its key
        return key_path.read_bytes(), False
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    log.warning("No signing key configured: generated a development key at %s", key_path)
    return data, True


def _new_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
