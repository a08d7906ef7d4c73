"""What must hold after a load test: in the store, and as the server's API tells it.

- `check_store`: the store's integrity check (SQLite's integrity_check; amcheck over every
  index on PostgreSQL), and every acknowledged record (and agreement receipt) stored
  exactly once.
- `check_phone`: every record a phone holds as acknowledged is stored exactly once, and the
  phone holds no card it must not (expired on its clock, cancelled, moved to someone else).
- `verify_ledger`, `ready_store`: the exposure ledger and the store settings, over HTTP.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.storage.connection import connection_settings, integrity_check, open_db
from sync.cards import is_expired
from sync.client import HttpTransport

from .phone import Phone
from .staff import StaffSession


@dataclass(frozen=True)
class StoreCheck:
    """What the store holds, against what the phones were told."""

    integrity: list[str]
    settings: dict[str, object]
    stored: int
    missing: list[str]
    duplicated: list[str]
    receipts_missing: list[str]

    @property
    def intact(self) -> bool:
        """The integrity check found nothing: one line, "ok" (on PostgreSQL without amcheck
        it says the unique values were checked instead)."""
        return len(self.integrity) == 1 and self.integrity[0].startswith("ok")


def check_store(target: Path | str, acknowledged: set[str], agreements: set[str]) -> StoreCheck:
    """The integrity check, and every acknowledged record (and agreement receipt) exactly
    once, in the SQLite file at `target` or the PostgreSQL store at that URL."""
    db = open_db(str(target))
    try:
        integrity = integrity_check(db)
        counts = Counter(row[0] for row in db.execute("SELECT id FROM sync_records"))
        receipts = Counter(
            row[0] for row in db.execute("SELECT agreement_id FROM agreement_receipts")
        )
        settings = connection_settings(db)
    finally:
        db.conn.close()
    return StoreCheck(
        integrity=integrity,
        settings=settings,
        stored=sum(counts.values()),
        missing=sorted(i for i in acknowledged if counts[i] == 0),
        duplicated=sorted(i for i in acknowledged if counts[i] > 1),
        receipts_missing=sorted(i for i in agreements & acknowledged if receipts[i] != 1),
    )


@dataclass
class PhoneCheck:
    """What the final comparison found for one phone."""

    phone: Phone
    stored: Counter[str]
    missing: list[str]
    duplicated: list[str]
    card_problems: list[str]

    @property
    def ok(self) -> bool:
        """True when nothing acknowledged is missing or duplicated and no card is held wrongly."""
        return not (self.missing or self.duplicated or self.card_problems or self.phone.errors)


def check_phone(phone: Phone, dispatcher: StaffSession) -> PhoneCheck:
    """The server's records of this agent against what the phone recorded and was told."""
    rows = dispatcher.pages("/records", {"agent_id": phone.user_id})
    recorded = set(phone.recorded)
    stored = Counter(row["id"] for row in rows if row["id"] in recorded)
    missing = sorted(i for i in phone.acknowledged if stored[i] == 0)
    duplicated = sorted(i for i, n in stored.items() if n > 1)
    return PhoneCheck(phone, stored, missing, duplicated, _card_problems(phone, dispatcher))


def _card_problems(phone: Phone, dispatcher: StaffSession) -> list[str]:
    """Cards the phone must no longer hold: expired on its clock, cancelled, moved away."""
    report = phone.client.report()
    if phone.wiped:
        return [] if report.cards == 0 and report.queued == 0 else ["wiped phone holds data"]
    problems = []
    now = phone.now()
    # Read the raw store, not cards(), which would drop expired cards as it reads them.
    for visit_id, expires_at in phone.client.held_cards():
        if is_expired(expires_at, now):
            problems.append(f"visit {visit_id}: card held past its expiry {expires_at}")
        visit = dispatcher.call("GET", f"/visits/{visit_id}").body
        if visit.get("status") == "cancelled":
            problems.append(f"visit {visit_id}: card held for a cancelled visit")
        elif visit.get("agent_id") != phone.user_id:
            problems.append(f"visit {visit_id}: card held after reassignment")
    return problems


def verify_ledger(base_url: str, username: str, password: str) -> dict[str, Any]:
    """GET /audit/verify as a privacy officer."""
    officer = StaffSession(HttpTransport(base_url, timeout=60), username, password)
    return officer.read("/audit/verify")


def ready_store(base_url: str) -> dict[str, Any]:
    """The store settings the running server reports on /ready."""
    answer = HttpTransport(base_url, timeout=10).request("GET", "/ready")
    if answer.status != 200:
        raise RuntimeError(f"GET /ready answered {answer.status}: {answer.body}")
    return answer.body["store"]
