"""The keyring: every public key that signed the ledger's checkpoints and certificates.

A key enters only explicitly: on the first start of a database none of whose checkpoints
another key signed, or through `flask keys rotate` / `flask keys accept-previous`. Each key
is kept in the database (append-only) and written to the keyring file beside the external
checkpoint files; verification trusts a key the database lists only if that file lists it
too. A server whose key is not in the keyring does not start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from server.clock import parse_iso, to_iso
from server.domain.ledger import endorse_key, endorsement_is_signed
from server.errors import KeyringError, SigningKeyUnknown
from server.runtime import Runtime
from server.services.checkpoints import checkpoint_dir
from server.storage import ledger as ledger_rows
from server.storage import ledger_files
from server.storage.connection import transaction
from sync.signing import key_id, load_private_key, load_public_key, public_key_pem

FIRST_USE, ROTATED, ACCEPTED = "first use", "rotate", "accept-previous"


def require_signing_key(db: sqlite_utils.Database, rt: Runtime, now: datetime) -> None:
    """Start-up check: this server's key is in the keyring (added on a fresh keyring)."""
    problem = signing_key_problem(db, rt, now)
    if problem:
        raise SigningKeyUnknown(problem)


def signing_key_problem(db: sqlite_utils.Database, rt: Runtime, now: datetime) -> str | None:
    """Why this server's key may not sign for this ledger, or None (enrolling a first key)."""
    current = rt.keys.key_id
    with transaction(db):
        known = {row["key_id"] for row in ledger_rows.list_keys(db)}
        if current in known:
            return None
        if known:
            return (
                f"this server's signing key {current} is not in the ledger keyring "
                f"({', '.join(sorted(known))}): start with a key from the keyring, or record "
                "the change with `flask keys rotate --previous-key-file OLD.pem`"
            )
        others = ledger_rows.signer_key_ids(db) - {current}
        if others:
            signers = ", ".join(sorted(others))
            return (
                f"the ledger's checkpoints or certificates are signed by {signers}"
                f", not by this server's key {current}: start with that key, or record the "
                "change with `flask keys rotate --previous-public-key OLD.pub.pem`"
            )
        record = _add(db, rt.keys.public_pem(), now, FIRST_USE)
    _publish(rt, [record])
    return None


def rotate(
    db: sqlite_utils.Database,
    rt: Runtime,
    now: datetime,
    *,
    previous_private_pem: bytes | None = None,
    previous_public_pems: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Record a change to this server's key; returns the keys added.

    With the previous private key the old key endorses the new one (a signed hand-over);
    with only public keys the change rests on the operator's word, and says so.
    """
    current_pem = rt.keys.public_pem()
    endorsed_by = endorsement = None
    olds = [_public(pem) for pem in previous_public_pems]
    if previous_private_pem is not None:
        try:
            retiring = load_private_key(previous_private_pem)
        except ValueError as exc:
            raise KeyringError(f"unreadable previous key: {exc}") from None
        endorsed_by, endorsement = endorse_key(retiring, current_pem, now)
        olds.append(retiring.public_key())
    added = []
    with transaction(db):
        known = {row["key_id"] for row in ledger_rows.list_keys(db)}
        for old in olds:
            if key_id(old) not in known:
                added.append(_add(db, public_key_pem(old), now, ACCEPTED))
                known.add(key_id(old))
        if rt.keys.key_id not in known:
            added.append(_add(db, current_pem, now, ROTATED, endorsed_by, endorsement))
            known.add(rt.keys.key_id)
        unknown = ledger_rows.signer_key_ids(db) - known
        if unknown:
            signers = ", ".join(sorted(unknown))
            raise KeyringError(
                f"the ledger holds checkpoints or certificates signed by {signers}"
                ": give each previous public key with --previous-public-key"
            )
    _publish(rt, added)
    return added


def accept_previous(
    db: sqlite_utils.Database, rt: Runtime, now: datetime, public_pem: str
) -> dict[str, Any] | None:
    """Record an old public key that signed part of the ledger; None if already there."""
    old = _public(public_pem)
    with transaction(db):
        if key_id(old) in {row["key_id"] for row in ledger_rows.list_keys(db)}:
            return None
        record = _add(db, public_key_pem(old), now, ACCEPTED)
    _publish(rt, [record])
    return record


def list_keys(db: sqlite_utils.Database, rt: Runtime) -> dict[str, Any]:
    """The keyring, oldest first, marking the key this server signs with."""
    outside = _outside_key_ids(rt)
    items = [
        {
            **row,
            "current": row["key_id"] == rt.keys.key_id,
            "in_keyring_file": None if outside is None else row["key_id"] in outside,
        }
        for row in ledger_rows.list_keys(db)
    ]
    return {"items": items, "current_key_id": rt.keys.key_id}


@dataclass
class Trust:
    """The public keys verification accepts, and what it found wrong with the keyring."""

    keys: dict[str, Ed25519PublicKey]
    findings: list[str] = field(default_factory=list)


def trusted_keys(db: sqlite_utils.Database, rt: Runtime) -> Trust:
    """This server's key, and each keyring key that the keyring file lists too (when the
    database's keyring has a key the file lacks, someone added it by hand)."""
    trust = Trust({rt.keys.key_id: rt.keys.public_key})
    outside = _outside_keys(rt)
    rows = ledger_rows.list_keys(db)
    for row in rows:
        kid = row["key_id"]
        if outside is not None and kid not in outside and kid != rt.keys.key_id:
            trust.findings.append(
                f"key {kid} is in the database keyring but not in the keyring file: "
                "it was not added by `flask keys`"
            )
            continue
        try:
            public = load_public_key(row["public_key_pem"])
        except ValueError:
            public = None
        if public is None or key_id(public) != kid:
            trust.findings.append(f"keyring entry {kid} does not hold that key")
            continue
        trust.keys[kid] = public
    for row in rows:
        if row["endorsed_by"] and not _endorsed(trust, row):
            trust.findings.append(
                f"key {row['key_id']} carries a hand-over from {row['endorsed_by']} that does "
                "not verify"
            )
    return trust


def _endorsed(trust: Trust, row: dict[str, Any]) -> bool:
    retiring = trust.keys.get(row["endorsed_by"])
    return retiring is not None and endorsement_is_signed(
        retiring, row["public_key_pem"], parse_iso(row["added_at"]), row["endorsement"]
    )


def _public(pem: str) -> Ed25519PublicKey:
    try:
        return load_public_key(pem)
    except ValueError as exc:
        raise KeyringError(f"not an Ed25519 public key: {exc}") from None


def _add(
    db: sqlite_utils.Database,
    pem: str,
    now: datetime,
    how: str,
    endorsed_by: str | None = None,
    endorsement: str | None = None,
) -> dict[str, Any]:
    record = {
        "key_id": key_id(load_public_key(pem)),
        "public_key_pem": pem,
        "added_at": to_iso(now.replace(microsecond=0)),
        "added_by": how,
        "endorsed_by": endorsed_by,
        "endorsement": endorsement,
    }
    ledger_rows.insert_key(db, record)
    return record


def _publish(rt: Runtime, records: list[dict[str, Any]]) -> None:
    directory = checkpoint_dir(rt)
    if directory is None or not records:
        return
    with ledger_files.locked(directory):
        present = {r.get("key_id") for r in ledger_files.read_keyring(directory) if r}
        fresh = [{"type": "ledger_key", **r} for r in records if r["key_id"] not in present]
        ledger_files.append_records(directory / ledger_files.KEYRING_FILE, fresh)


def _outside_keys(rt: Runtime) -> dict[str, dict[str, Any]] | None:
    """The keyring file's keys by id; None when there is no file to compare with."""
    directory = checkpoint_dir(rt)
    if directory is None or not (directory / ledger_files.KEYRING_FILE).is_file():
        return None
    return {r["key_id"]: r for r in ledger_files.read_keyring(directory) if r and "key_id" in r}


def _outside_key_ids(rt: Runtime) -> set[str] | None:
    outside = _outside_keys(rt)
    return None if outside is None else set(outside)
