"""Pausing Python's cyclic garbage collector over one bounded batch of work.

A bulk operation (a chunk of an import) allocates hundreds of thousands of short-lived
containers; each 700 allocations start a collection that walks the young objects, and every
tenth of those the older ones, which in a server holding its modules, schemas and caches is
a great many. Measured on a 20,000-row contact import, a third of the CPU went there while
the batch made almost no reference cycles. Reference counting still frees everything
as usual while the collector waits; only cycles wait for the end of the batch, and a batch
is bounded (one chunk), so memory stays bounded too.

The collector is one per process and requests run on several threads: a pause is counted,
and the collector runs again when the last pause ends (and only if it ran before the first).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold the cyclic collector for the duration of the block (see the module doc)."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
