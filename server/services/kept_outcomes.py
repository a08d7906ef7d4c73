"""Agent outcomes already built and dumped, kept per worker, for answers that repeat them.

A phone pulls the same stored outcomes pull after pull until its cursor passes them, and a
phone that did not hear a push's answer sends the batch again and is answered from the
store. Building the agent's view of an outcome and dumping it was a third of such a
request. An outcome is kept already dumped by OutcomeSchema's compiled plan
(fast_dump.dumped), which a compiled plan of the answer hands on as it is, under a key of
everything it was computed from (the caller's choice: stored texts, the facts the agent's
card discloses). Each answer gets its own copies of the containers the ledger may remove a
fact from (the outcome and its flags); the kept ones are never handed out.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from schemas.fast_dump import dumped, written_type
from schemas.sync import OutcomeSchema

_WRITTEN_OUTCOME = written_type(OutcomeSchema)


class KeptOutcomes:
    """At most `size` dumped outcomes (about 1.5 KB each), the oldest dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: dict[Hashable, dict[str, Any]] = {}

    def clear(self) -> None:
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, key: Hashable, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A copy of the outcome kept under `key`; built by `build()` and dumped the first
        time. An outcome the schema does not dump through a compiled plan is returned as
        built, not kept (the answer's dump writes it)."""
        known = self._kept.get(key)
        if known is None:
            known = dumped(OutcomeSchema, build())
            if type(known) is not _WRITTEN_OUTCOME:
                return known
            while len(self._kept) >= self.size:
                try:
                    del self._kept[next(iter(self._kept))]
                except (StopIteration, KeyError, RuntimeError):  # another thread took it
                    break
            self._kept[key] = known
        copy = _WRITTEN_OUTCOME(known)
        flags = known["flags"]
        if flags:
            copy["flags"] = [dict(flag) for flag in flags]
        return copy
