"""Bounded per-worker memos: plain dicts that keep at most a given number of entries.

The request paths keep work they will be asked for again (verified tokens, agents' cards,
dumped outcomes, replay answers) in module-level dicts. Each is bounded the same way: when
full, the oldest entries (dicts keep insertion order) make room for the new one. Threads of
one worker (gunicorn's gthread) share a memo; a thread that finds another one already took
the entry it meant to drop simply stops dropping.
"""

from __future__ import annotations

from typing import Any, TypeVar

V = TypeVar("V")


def keep(memo: dict[Any, V], key: Any, value: V, size: int) -> V:
    """Store `value` under `key` in `memo`, first dropping its oldest entries while it
    holds `size` or more; returns `value`."""
    while len(memo) >= size:
        try:
            del memo[next(iter(memo))]
        except (StopIteration, KeyError, RuntimeError):  # another thread took it
            break
    memo[key] = value
    return value
