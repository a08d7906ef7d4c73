"""The exposure ledger's hash chain: how an entry is hashed and how a chain is checked."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

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


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 over the entry's columns as a compact JSON array."""
    payload = json.dumps(
        [entry[column] for column in HASHED_COLUMNS], separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(payload.encode()).hexdigest()


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
    expected_seq, prev, checked = start_seq + 1, start_hash, 0
    for row in rows:
        seq = row["seq"]
        problem = None
        if seq != expected_seq:
            problem = f"expected entry {expected_seq}, found {seq}: entries removed or inserted"
        elif row["prev_hash"] != prev:
            problem = "prev_hash does not match the previous entry's hash"
        elif entry_hash(row) != row["hash"]:
            problem = "entry content does not match its hash"
        if problem:
            return ChainReport(
                False, checked, expected_seq - 1, prev, min(seq, expected_seq), problem
            )
        prev, expected_seq, checked = row["hash"], seq + 1, checked + 1
    return ChainReport(True, checked, expected_seq - 1, prev)
