"""How the load tests summarise what they measured."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def statuses_text(counts: Mapping[Any, int]) -> str:
    """`200: 12, 201: 3`, or `none`."""
    return ", ".join(f"{status}: {n}" for status, n in sorted(counts.items(), key=str)) or "none"
