"""CSV that a spreadsheet opens safely: RFC 4180 rows whose text cannot run as a formula.

A cell that begins with `=`, `+`, `-` or `@` (or a tab or carriage return, which some
spreadsheets skip before reading the formula) is prefixed with a single quote, as OWASP's
"CSV Injection" page advises: the text is shown as written and never evaluated. Borrower
names, usernames and team names are typed by people outside our control, so every text
cell goes through `cell`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """One value as a safe cell: lists joined with ';', dicts as JSON, and text that a
    spreadsheet would run as a formula quoted."""
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    elif isinstance(value, dict):
        value = json.dumps(value, sort_keys=True)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_lines(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The header line, then one line per row (CRLF-terminated), for streaming."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([cell(column) for column in columns])
    yield out.getvalue()
    for row in rows:
        out.seek(0)
        out.truncate()
        writer.writerow([cell(row.get(column)) for column in columns])
        yield out.getvalue()


def to_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    """Rows as RFC 4180 CSV text with a header line."""
    return "".join(csv_lines(columns, rows))
