"""Per-request timings of named phases, reported in a Server-Timing header when enabled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_phases: ContextVar[dict[str, float] | None] = ContextVar("doorstep_phases", default=None)


def start_request() -> None:
    _phases.set({})


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Add the time spent in this block to the request's phase `name` (milliseconds)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        phases = _phases.get()
        if phases is not None:
            phases[name] = phases.get(name, 0.0) + (time.perf_counter() - started) * 1000


def server_timing_header() -> str:
    phases = _phases.get() or {}
    return ", ".join(f"{name};dur={ms:.3f}" for name, ms in phases.items())
