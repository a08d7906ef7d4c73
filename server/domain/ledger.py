"""The exposure ledger's hash chain and its signed checkpoints.

An entry's hash is SHA-256 over its HASHED_COLUMNS as a compact JSON array (no spaces,
non-ASCII kept as UTF-8). A checkpoint is the server's Ed25519 signature over a chain
position; the signed message is these lines, UTF-8, joined by "\\n", no trailing newline:

    doorstep-ledger-checkpoint-v1
    {key_id}
    {head_seq}
    {head_hash}
    {created_at as UTC YYYY-MM-DDTHH:MM:SSZ}

The key id, the signature's encoding and the timestamp's one spelling are those of
sync/signing.py, as for agreement receipts.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json import encoder as _json_encoder
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sync.signing import (
    format_timestamp,
    key_id,
    load_public_key,
    read_key_id,
    read_text,
    read_timestamp,
    sign,
    verify,
)

GENESIS_HASH = "0" * 64

# The hashed content of an entry, in this order. Changing it breaks every existing chain.
HASHED_COLUMNS = (
    "seq",
    "occurred_at",
    "user_id",
    "role",
    "device_id",
    "borrower_id",
    "case_id",
    "visit_id",
    "fields",
    "purpose",
    "endpoint",
    "request_id",
    "outcome",
    "prev_hash",
)

CONTENT_MISMATCH = "entry content does not match its hash"


def _compact_json_encoder() -> Callable[[Sequence[Any]], str]:
    """json.dumps(values, separators=(",", ":"), ensure_ascii=False), built once.

    json.dumps builds a fresh encoder per call; reusing the C encoder doubles the speed of
    whole-chain verification and yields the very same text.
    """
    make = getattr(_json_encoder, "c_make_encoder", None)
    if make is None:  # pure-Python json: same output, slower
        plain = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
        return lambda values: plain.encode(list(values))
    encode = make(None, None, _json_encoder.encode_basestring, None, ":", ",", False, False, True)
    return lambda values: "".join(encode(values, 0))


canonical_json = _compact_json_encoder()


def values_hash(values: Sequence[Any]) -> str:
    """SHA-256 of an entry given as its HASHED_COLUMNS values, in that order."""
    return hashlib.sha256(canonical_json(values).encode()).hexdigest()


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 over the entry's columns as a compact JSON array."""
    return values_hash([entry[column] for column in HASHED_COLUMNS])


def chain(entries: list[dict[str, Any]], head_seq: int, head_hash: str) -> list[dict[str, Any]]:
    """Give new entries their seq, prev_hash and hash after the current head."""
    prev = head_hash
    for offset, entry in enumerate(entries, start=1):
        entry["seq"] = head_seq + offset
        entry["prev_hash"] = prev
        entry["hash"] = prev = entry_hash(entry)
    return entries


@dataclass(frozen=True)
class ChainReport:
    intact: bool
    entries_checked: int
    head_seq: int
    head_hash: str
    first_broken_seq: int | None = None
    problem: str | None = None


def verify_chain(
    rows: Iterable[Mapping[str, Any]],
    start_seq: int = 0,
    start_hash: str = GENESIS_HASH,
) -> ChainReport:
    """Walk entries in seq order; report the first one that was altered, inserted or removed."""
    return verify_rendered(
        ((row["seq"], entry_hash(row), row["prev_hash"], row["hash"]) for row in rows),
        start_seq,
        start_hash,
    )


def verify_rendered(
    rows: Iterable[tuple[int, str | bytes, str, str]],
    start_seq: int = 0,
    start_hash: str = GENESIS_HASH,
) -> ChainReport:
    """verify_chain over (seq, content, prev_hash, hash) rows, the hot loop of verification.

    `content` is either the recomputed hash (hex text) or the canonical JSON bytes to hash.
    """
    expected_seq, prev, checked = start_seq + 1, start_hash, 0
    sha256 = hashlib.sha256
    for seq, content, prev_hash, stored in rows:
        if seq != expected_seq:
            problem = f"expected entry {expected_seq}, found {seq}: entries removed or inserted"
        elif prev_hash != prev:
            problem = "prev_hash does not match the previous entry's hash"
        elif (content if type(content) is str else sha256(content).hexdigest()) != stored:
            problem = CONTENT_MISMATCH
        else:
            prev, expected_seq, checked = stored, seq + 1, checked + 1
            continue
        return ChainReport(False, checked, expected_seq - 1, prev, min(seq, expected_seq), problem)
    return ChainReport(True, checked, expected_seq - 1, prev)


def verify_fast(
    rendered: Iterable[tuple[int, bytes, str, str]],
    start_seq: int,
    start_hash: str,
    entries_after: Callable[[int], Iterable[Mapping[str, Any]]],
) -> ChainReport:
    """Verify rows whose canonical JSON the store rendered; confirm any mismatch in Python.

    The store's rendering only filters: from the first entry whose hash does not match,
    verification continues over `entries_after(seq)` with entry_hash, the one definition.
    """
    fast = verify_rendered(rendered, start_seq, start_hash)
    if fast.intact or fast.problem != CONTENT_MISMATCH:
        return fast
    rest = verify_chain(entries_after(fast.head_seq), fast.head_seq, fast.head_hash)
    return ChainReport(
        rest.intact,
        fast.entries_checked + rest.entries_checked,
        rest.head_seq,
        rest.head_hash,
        rest.first_broken_seq,
        rest.problem,
    )


# --- Signed checkpoints ---------------------------------------------------------------

CHECKPOINT_VERSION = "doorstep-ledger-checkpoint-v1"
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Checkpoint:
    """The server's signed statement that the ledger's entry `head_seq` has `head_hash`."""

    head_seq: int
    head_hash: str
    created_at: datetime
    key_id: str
    signature: str

    def message(self) -> bytes:
        """The exact bytes the signature covers."""
        return checkpoint_message(self.key_id, self.head_seq, self.head_hash, self.created_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "created_at": format_timestamp(self.created_at),
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "key_id": self.key_id,
            "signature": self.signature,
        }


def checkpoint_message(key_id: str, head_seq: int, head_hash: str, created_at: datetime) -> bytes:
    """The canonical byte string a checkpoint signs."""
    stamp = format_timestamp(created_at)
    return "\n".join((CHECKPOINT_VERSION, key_id, str(head_seq), head_hash, stamp)).encode()


def sign_checkpoint(
    private_key: Ed25519PrivateKey, head_seq: int, head_hash: str, created_at: datetime
) -> Checkpoint:
    """Sign a chain position; created_at is truncated to the second it names."""
    created_at = created_at.astimezone(UTC).replace(microsecond=0)
    kid = key_id(private_key.public_key())
    signature = sign(private_key, checkpoint_message(kid, head_seq, head_hash, created_at))
    return Checkpoint(head_seq, head_hash, created_at, kid, signature)


def read_checkpoint(data: Mapping[str, Any]) -> Checkpoint:
    """An exported checkpoint; raises ValueError when a field is missing or malformed."""
    version = data.get("version", CHECKPOINT_VERSION)
    if version != CHECKPOINT_VERSION:
        raise ValueError(f"unsupported checkpoint version {version!r}")
    head_seq = data.get("head_seq")
    if type(head_seq) is not int or head_seq < 0:
        raise ValueError("head_seq must be a non-negative integer")
    head_hash = read_text(data.get("head_hash"), "head_hash")
    if not _HEX64.fullmatch(head_hash):
        raise ValueError("head_hash must be 64 lowercase hex characters")
    kid = read_key_id(data.get("key_id"))
    created_at = read_timestamp(data.get("created_at"), "created_at")
    return Checkpoint(
        head_seq, head_hash, created_at, kid, read_text(data.get("signature"), "signature")
    )


def checkpoint_is_signed(public_key: Ed25519PublicKey, checkpoint: Checkpoint) -> bool:
    """True only if this key signed exactly this chain position at this time."""
    return verify(public_key, checkpoint.message(), checkpoint.key_id, checkpoint.signature)


# --- Key changes ----------------------------------------------------------------------

ENDORSEMENT_VERSION = "doorstep-key-endorsement-v1"


def endorsement_message(endorsing_key_id: str, public_key_pem: str, created_at: datetime) -> bytes:
    """What a retiring key signs to hand over to its successor: these lines joined by "\\n":
    version, the retiring key's id, the successor's id, its PEM (trimmed), the time."""
    successor = key_id(load_public_key(public_key_pem))
    return "\n".join(
        (
            ENDORSEMENT_VERSION,
            endorsing_key_id,
            successor,
            public_key_pem.strip(),
            format_timestamp(created_at),
        )
    ).encode()


def endorse_key(
    retiring: Ed25519PrivateKey, successor_pem: str, created_at: datetime
) -> tuple[str, str]:
    """(retiring key id, signature) by which the retiring key vouches for its successor."""
    kid = key_id(retiring.public_key())
    return kid, sign(retiring, endorsement_message(kid, successor_pem, created_at))


def endorsement_is_signed(
    retiring: Ed25519PublicKey, successor_pem: str, created_at: datetime, signature: str
) -> bool:
    """True only if the retiring key signed this hand-over at this time."""
    kid = key_id(retiring)
    return verify(retiring, endorsement_message(kid, successor_pem, created_at), kid, signature)
