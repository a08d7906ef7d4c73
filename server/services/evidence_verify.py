"""Offline verification of an evidence pack: no database, no server, only the pack.

1. BagIt: bagit's own validation (every manifest entry present with its SHA-256, no file
   that a manifest does not list, Payload-Oxum), and both SHA-256 manifests exist.
2. Ledger: each checkpoint's Ed25519 signature under a key in the pack; each run of
   chain.jsonl hashes entry by entry, links by prev_hash and ends at the head its checkpoint
   signed; every line of entries.jsonl is in a run, is about the pack's borrower, and
   every entry of a run about that borrower is listed.
3. Agreements: the canonical bytes hash to the receipt's content hash, the receipt's
   signature holds, the signature images hash to the names the agreement gives them.

The second and third checks run even when the first fails, so one report names every
problem; a pack is valid only with no problem at all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bagit
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from server.domain.ledger import (
    HASHED_COLUMNS,
    checkpoint_is_signed,
    entry_hash,
    read_checkpoint,
)
from sync.receipts import verify_receipt
from sync.signing import decode_signature, key_id, load_public_key


@dataclass
class PackReport:
    """What verification found; `problems` empty means the pack is intact."""

    problems: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.problems


def verify_pack(path: Path) -> PackReport:
    """Check a pack directory as the module says; never raises for a bad pack."""
    report = PackReport()
    _check_bag(path, report)
    data = path / "data"
    keys = _keys(data / "keys", report)
    _check_ledger(data / "ledger", keys, report)
    _check_agreements(data / "agreements", keys, report)
    return report


def _check_bag(path: Path, report: PackReport) -> None:
    for name in ("manifest-sha256.txt", "tagmanifest-sha256.txt"):
        if not (path / name).is_file():
            report.problems.append(f"{name} is missing")
    try:
        bag = bagit.Bag(str(path))
        bag.validate()
    except bagit.BagValidationError as error:
        details = [str(d) for d in error.details] or [error.message]
        report.problems.extend(f"bagit: {d}" for d in details)
        _name_missing(path, bag, report)
    except bagit.BagError as error:
        report.problems.append(f"bagit: {error}")
    else:
        report.checked["files"] = len(bag.entries)
    _uncovered_tag_files(path, report)


def _uncovered_tag_files(path: Path, report: PackReport) -> None:
    """bagit checks the tag files the tag manifest lists, not that it lists them all."""
    manifest = path / "tagmanifest-sha256.txt"
    if not manifest.is_file():
        return
    listed = {
        line.split(maxsplit=1)[1].strip()
        for line in manifest.read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
    for file in sorted(path.rglob("*")):
        name = file.relative_to(path).as_posix()
        tag_file = not name.startswith(("data/", "tagmanifest-"))
        if file.is_file() and tag_file and name not in listed:
            report.problems.append(f"{name} is in no manifest")


def _name_missing(path: Path, bag: bagit.Bag, report: PackReport) -> None:
    """bagit stops at a wrong file count (Payload-Oxum): name the files themselves."""
    listed = set(bag.entries)
    for name in sorted(listed):
        if not (path / name).is_file():
            report.problems.append(f"{name} is listed in a manifest but missing")
    for file in sorted((path / "data").rglob("*")):
        name = file.relative_to(path).as_posix()
        if file.is_file() and name not in listed:
            report.problems.append(f"{name} is in no manifest")


def _keys(folder: Path, report: PackReport) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    for pem in sorted(folder.glob("*.pem")) if folder.is_dir() else ():
        try:
            key = load_public_key(pem.read_bytes())
        except ValueError:
            report.problems.append(f"keys/{pem.name} is not an Ed25519 public key")
            continue
        keys[key_id(key)] = key
    if not keys:
        report.problems.append("no public key in data/keys")
    return keys


def _lines(path: Path, report: PackReport) -> list[dict[str, Any]]:
    if not path.is_file():
        report.problems.append(f"{path.name} is missing")
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            report.problems.append(f"{path.name} line {number} is not JSON")
    return rows


def _check_ledger(folder: Path, keys: dict[str, Ed25519PublicKey], report: PackReport) -> None:
    chain = {row.get("seq"): row for row in _lines(folder / "chain.jsonl", report)}
    proven: set[int] = set()
    for document in _lines(folder / "checkpoints.jsonl", report):
        proven |= _check_run(folder, document, chain, keys, report)
    entries = _lines(folder / "entries.jsonl", report)
    borrower = _borrower(folder.parent / "pack.json", report)
    others = sorted({str(row.get("borrower_id")) for row in entries} - {str(borrower)})
    if others:
        report.problems.append(f"entries.jsonl holds entries of other borrowers {others}")
    listed = {row.get("seq") for row in entries}
    for seq in sorted(proven):
        if chain[seq]["borrower_id"] == borrower and seq not in listed:
            report.problems.append(f"ledger entry {seq} is about the borrower but not listed")
    for row in entries:
        seq = row.get("seq")
        if seq not in proven:
            report.problems.append(f"ledger entry {seq} is not covered by a signed checkpoint")
        elif chain[seq] != row:
            report.problems.append(f"ledger entry {seq} differs from its line in chain.jsonl")
    report.checked["ledger_entries"] = len(entries)


def _borrower(pack_json: Path, report: PackReport) -> Any:
    try:
        return json.loads(pack_json.read_text(encoding="utf-8"))["borrower_id"]
    except (OSError, ValueError, KeyError, TypeError):
        report.problems.append("pack.json is missing or names no borrower")
        return None


def _check_run(
    folder: Path,
    document: dict[str, Any],
    chain: dict[Any, dict[str, Any]],
    keys: dict[str, Ed25519PublicKey],
    report: PackReport,
) -> set[int]:
    """The seqs a checkpoint proves: its signature, then its run of the chain."""
    try:
        checkpoint = read_checkpoint(document)
    except ValueError as error:
        report.problems.append(f"checkpoint {document.get('id')}: {error}")
        return set()
    name = f"checkpoint {document.get('id')}"
    key = keys.get(checkpoint.key_id)
    if key is None or not checkpoint_is_signed(key, checkpoint):
        report.problems.append(f"{name}: the signature does not verify under the pack's keys")
        return set()
    files = folder / "checkpoints" / f"checkpoint-{document.get('id')}"
    msg, sig = files.with_suffix(".msg"), files.with_suffix(".sig")
    if not msg.is_file() or msg.read_bytes() != checkpoint.message():
        report.problems.append(f"{name}: {msg.name} is not the signed message")
    if not sig.is_file() or sig.read_bytes() != decode_signature(checkpoint.signature):
        report.problems.append(f"{name}: {sig.name} is not the signature")
    first = document.get("covers_from_seq")
    if type(first) is not int or first > checkpoint.head_seq:
        report.problems.append(f"{name}: covers_from_seq is not a seq before its head")
        return set()
    previous_hash = None
    for seq in range(first, checkpoint.head_seq + 1):
        row = chain.get(seq)
        problem = _entry_problem(row, previous_hash)
        if problem:
            report.problems.append(f"ledger entry {seq}: {problem}")
            return set()
        previous_hash = row["hash"]  # type: ignore[index]
    if previous_hash != checkpoint.head_hash:
        report.problems.append(f"{name}: the chain does not end at the signed head hash")
        return set()
    return set(range(first, checkpoint.head_seq + 1))


def _entry_problem(row: dict[str, Any] | None, previous_hash: str | None) -> str | None:
    if row is None:
        return "missing from chain.jsonl"
    if any(column not in row for column in (*HASHED_COLUMNS, "hash")):
        return "a column is missing"
    if previous_hash is not None and row["prev_hash"] != previous_hash:
        return "prev_hash does not match the previous entry's hash"
    if entry_hash(row) != row["hash"]:
        return "its content does not match its hash (edited)"
    return None


def _check_agreements(folder: Path, keys: dict[str, Ed25519PublicKey], report: PackReport) -> None:
    count = 0
    for agreement in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else ():
        count += 1
        try:
            _check_agreement(agreement, keys, report)
        except (OSError, ValueError, KeyError, TypeError) as error:
            report.problems.append(f"agreement {agreement.name}: unreadable ({error})")
    report.checked["agreements"] = count


def _check_agreement(
    agreement: Path, keys: dict[str, Ed25519PublicKey], report: PackReport
) -> None:
    name = f"agreement {agreement.name}"
    canonical = agreement / "agreement.canonical.json"
    receipt_file = agreement / "receipt.json"
    if not canonical.is_file() or not receipt_file.is_file():
        report.problems.append(f"{name}: canonical form or receipt missing")
        return
    receipt = json.loads(receipt_file.read_text(encoding="utf-8"))
    if hashlib.sha256(canonical.read_bytes()).hexdigest() != receipt.get("content_hash"):
        report.problems.append(f"{name}: the canonical form does not hash to the receipt's")
    key = keys.get(receipt.get("key_id"))
    if key is None or not verify_receipt(key, receipt):
        report.problems.append(f"{name}: the receipt's signature does not verify")
    body = json.loads((agreement / "record.json").read_text(encoding="utf-8"))["agreement"]
    for who in ("borrower", "agent"):
        images = list(agreement.glob(f"{who}-signature.*"))
        expected = body.get(f"{who}_signature_sha256")
        if not images or _sha256(images[0]) != expected:
            report.problems.append(f"{name}: the {who}'s signature image is not {expected}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
