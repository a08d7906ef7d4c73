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
    # A moment already in UTC (nearly all of them) is spelled directly: the same text,
    # several times cheaper, and a push writes a few per record.
    if moment.tzinfo is UTC:
        return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 (faster than format)
            moment.year,
            moment.month,
            moment.day,
            moment.hour,
            moment.minute,
            moment.second,
            moment.microsecond,
        )
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Read a stored or client timestamp; naive input is taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
