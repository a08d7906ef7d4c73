"""The ledger for outside systems: entries as FHIR AuditEvents for a SIEM."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlite_utils

from server.clock import to_iso
from server.config import public_url
from server.domain.fhir_audit import audit_event
from server.runtime import Runtime
from server.storage import ledger as ledger_rows

_BATCH = 1000


def fhir_audit_events(
    db: sqlite_utils.Database, rt: Runtime, since: datetime | None, until: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Ledger entries that occurred in [since, until) as FHIR R4 AuditEvents, in seq order."""
    source = public_url(rt.settings)
    window = {
        "since": to_iso(since) if since else None,
        "until": to_iso(until) if until else None,
    }
    after = 0
    while True:
        rows = ledger_rows.query_entries(db, {**window, "after_seq": after}, _BATCH)
        for row in rows:
            yield audit_event(row, source)
        if len(rows) < _BATCH:
            return
        after = rows[-1]["seq"]
