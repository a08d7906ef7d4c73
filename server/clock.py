"""Time in one format: aware UTC datetimes inside, ISO 8601 with 'Z' in the store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def to_iso(moment: datetime) -> str:
    """Store format: sortable, microsecond precision, always UTC."""
    # isoformat, not strftime: strftime does not zero-pad years below 1000 on every platform.
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Read a stored or client timestamp; naive input is taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
