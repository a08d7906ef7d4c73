"""The ledger's files outside the database: checkpoints and the keyring, as JSON lines.

Append-only by construction here (opened O_APPEND, never rewritten), flushed to disk with
fsync before a write returns; operations ship the directory to write-once storage. Several
server processes share a directory: an exclusive lock on `.lock` serialises the writers.

- `ledger-checkpoints-YYYY-MM-DD.jsonl`: one signed checkpoint per line, one file per UTC day
  of the checkpoint;
- `keyring.jsonl`: one public key per line, in the order they were accepted.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

KEYRING_FILE = "keyring.jsonl"
_LOCK_FILE = ".lock"
_CHECKPOINT_FILE = re.compile(r"ledger-checkpoints-\d{4}-\d{2}-\d{2}\.jsonl")


def checkpoint_file(directory: Path, day: str) -> Path:
    """The file of one UTC day ('YYYY-MM-DD')."""
    return directory / f"ledger-checkpoints-{day}.jsonl"


@contextmanager
def locked(directory: Path) -> Iterator[Path]:
    """Hold the directory's writer lock (created with the directory if need be)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield directory
    finally:
        os.close(fd)  # closing releases the lock


def append_records(path: Path, records: list[dict[str, Any]]) -> None:
    """Append records as JSON lines and fsync; the caller holds the lock."""
    if not records:
        return
    data = "".join(
        json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
        for r in records
    ).encode()
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:  # the new name must survive a power cut too
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def checkpoint_files(directory: Path) -> list[Path]:
    """The day files, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _CHECKPOINT_FILE.fullmatch(p.name))


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(line number, record) per non-empty line; None for a line that is not a JSON object."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                record = None
            yield number, record if isinstance(record, dict) else None


def last_checkpoint_id(directory: Path) -> int:
    """The highest checkpoint id in the two newest day files (0 if none): what was written."""
    ids = [
        record["id"]
        for path in checkpoint_files(directory)[-2:]
        for _, record in read_records(path)
        if record is not None and type(record.get("id")) is int
    ]
    return max(ids, default=0)


def read_checkpoints(directory: Path) -> Iterator[tuple[str, int, dict[str, Any] | None]]:
    """(file name, line number, record) of every checkpoint line, oldest file first."""
    for path in checkpoint_files(directory):
        for number, record in read_records(path):
            yield path.name, number, record


def read_keyring(directory: Path) -> list[dict[str, Any] | None]:
    """The keyring file's records (None for an unreadable line); [] without the file."""
    path = directory / KEYRING_FILE
    if not path.is_file():
        return []
    return [record for _, record in read_records(path)]
