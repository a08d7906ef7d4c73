"""What the golden corpus is made of: pushes, the midway change, and each phone's state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Push:
    """One POST /sync/push: when, from which phone, the body as sent, and what it is."""

    index: int
    at: datetime
    device: str
    body: Any
    note: str


@dataclass(frozen=True)
class Midway:
    """The server's world changes now (cancellations, reassignments, flags, uploads)."""

    at: datetime


@dataclass
class Phone:
    device: str
    agent: str
    badge: str
    seq: int = 0
    batches: list[list[Any]] = field(default_factory=list)
    deferred: list[dict] = field(default_factory=list)  # recorded, goes with the next push
    waiting: list[dict] = field(default_factory=list)  # references a blob uploaded midway
    sent: list[dict] = field(default_factory=list)  # well-formed records sent
    acked: bool = False

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq
