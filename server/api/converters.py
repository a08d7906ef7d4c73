"""Path parameter converters: what does not fit is a 404 before any view or query runs."""

from __future__ import annotations

from datetime import date

from werkzeug.routing import BaseConverter, IntegerConverter, ValidationError

from schemas.common import BUSINESS_DATES

MAX_ID = 2**63 - 1  # SQLite's INTEGER range; larger ids cannot exist


class IdConverter(IntegerConverter):
    """A non-negative integer id within SQLite's range."""

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 (werkzeug's name)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


class DateConverter(BaseConverter):
    """A business day, YYYY-MM-DD from 2000 to 2100: no other day has visits or routes."""

    regex = r"\d{4}-\d{2}-\d{2}"

    def to_python(self, value: str) -> date:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValidationError() from None
        if not BUSINESS_DATES[0] <= day <= BUSINESS_DATES[1]:
            raise ValidationError()
        return day

    def to_url(self, value: date) -> str:
        return value.isoformat()


class Sha256Converter(BaseConverter):
    """A SHA-256 digest as 64 lowercase hex digits."""

    regex = r"[0-9a-f]{64}"


CONVERTERS = {
    "int": (IdConverter, lambda c: {"type": "integer", "minimum": 0, "maximum": MAX_ID}),
    "day": (DateConverter, lambda c: {"type": "string", "format": "date"}),
    "sha256": (Sha256Converter, lambda c: {"type": "string", "pattern": "^[0-9a-f]{64}$"}),
}
