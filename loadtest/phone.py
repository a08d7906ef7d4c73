"""One simulated agent's phone: the reference client, what the agent records, what it learns.

The phone is `sync.client.FieldClient` behind a `FaultyTransport`. Two ways of working a
day are here: `record_visit` does what an agent does at one door (badge, ID characters,
report, sometimes a photo or a signed agreement; the field simulator), and
`record_random_visit` records a quick visit to any card of the day (the load trials).
Every random choice comes from `rng`, so a seed replays the same day.
"""

from __future__ import annotations

import contextlib
import random
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sync.client import ClientError, DeviceRevoked, FieldClient, SyncResult, TransportError

from .transport import FaultyTransport

OUTCOMES = ("met_borrower", "not_home", "promise_to_pay", "refused", "third_party_met")
SHANGHAI = {"lat": 31.23, "lon": 121.47}  # where a card without a home fix is visited


@dataclass
class Phone:
    """One agent's phone and what the run learned from it."""

    client: FieldClient
    transport: FaultyTransport
    badge: str
    rng: random.Random
    user_id: int | None = None
    clock_skew: timedelta = timedelta(0)
    # Read the outbox after every pass for what it holds acknowledged or rejected: the
    # simulator's checks need it; the load trials skip it (it costs time under load).
    tally_outbox: bool = False
    visits: list[dict[str, Any]] = field(default_factory=list)  # the day, as pulled at first
    visited: set[int] = field(default_factory=set)
    recorded: list[str] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    rejected: dict[str, str | None] = field(default_factory=dict)
    wiped: bool = False
    unsent_at_wipe: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def username(self) -> str:
        """The agent's username."""
        return self.client.username

    def now(self) -> datetime:
        """The phone's clock."""
        return datetime.now(UTC) + self.clock_skew

    def morning(self) -> None:
        """Log in and pull the day (Argon2 happens here, before anything is timed)."""
        self.client.login()
        self.sync()
        self.visits = self.client.cards()

    def sync(self) -> SyncResult | None:
        """One sync pass; a pass the network cut short leaves its records queued."""
        if self.wiped:
            return None
        try:
            result = self.client.sync()
        except ClientError as error:
            self.errors.append(f"{type(error).__name__}: {error}")
            return None
        self.acknowledged |= set(result.acknowledged)
        if result.stopped == "wiped":
            self.wiped, self.unsent_at_wipe = True, result.unsent_at_wipe
        elif self.tally_outbox:
            for entry in self.client.outbox_state():
                if entry.state == "acknowledged":
                    self.acknowledged.add(entry.id)
                elif entry.state == "rejected":
                    self.rejected[entry.id] = entry.reason
        return result

    def queued(self) -> int:
        """Records still waiting in the outbox."""
        return self.client.report().queued

    def view_day(self) -> None:
        """GET /me/day with the client's token: every card served is written to the ledger."""
        with contextlib.suppress(TransportError):  # counted by the meter; it looks again later
            self.transport.request("GET", "/me/day", headers=self.transport.auth_headers)

    def work_offline(self, visits: int) -> None:
        """Record the next `visits` visits of the day, as the phone would with no network."""
        todo = [card for card in self.client.cards() if card["id"] not in self.visited]
        for card in todo[:visits]:
            self.visited.add(card["id"])
            try:
                self.record_visit(card)
            except DeviceRevoked:
                return

    def record_visit(self, card: Mapping[str, Any]) -> None:
        """At the door: badge shown, ID characters typed when the borrower is met, the
        report (a photo now and then), and on agreement visits often a signed plan."""
        client, rng, visit_id = self.client, self.rng, card["id"]
        borrower = card.get("borrower") or {}
        home = borrower.get("home_geo") or SHANGHAI
        lat = home["lat"] + rng.uniform(-0.0002, 0.0002)
        lon = home["lon"] + rng.uniform(-0.0002, 0.0002)
        arrived = self.now() - timedelta(minutes=2)
        ids = [client.record_agent_credential(visit_id, self.badge, borrower_acknowledged=True)]
        self.recorded += ids
        outcome = rng.choice(OUTCOMES)
        fields: dict[str, Any] = {
            "contacted_at": self.now(),
            "location": {"lat": round(lat, 6), "lon": round(lon, 6), "accuracy_m": 12.0},
            "notes": f"simulated visit by {self.username}",
        }
        if outcome == "promise_to_pay":
            fields["promise_amount"] = Decimal("500.00")
            fields["promise_date"] = date.fromisoformat(card["visit_date"]) + timedelta(days=7)
        if outcome == "third_party_met":
            fields["third_party_present"] = True
        if rng.random() < 0.3:
            fields["attachments"] = [client.add_blob(tiny_png(rng))]
        if outcome in ("met_borrower", "promise_to_pay"):
            typed = f"{rng.randrange(10**6):06d}"
            self.recorded.append(client.record_borrower_identity(visit_id, typed))
        signs = card.get("purpose") == "agreement_signing" and rng.random() < 0.6
        if signs:
            outcome = "agreement_signed"
        report = client.record_visit_report(visit_id, arrived_at=arrived, outcome=outcome, **fields)
        self.recorded.append(report)
        if signs:
            due = date.fromisoformat(card["visit_date"])
            self._sign_agreement(card, due, f"{lat:.6f}", f"{lon:.6f}")

    def record_random_visit(self, agreement_share: float) -> None:
        """A quick visit to any card of the day: badge shown, the report, and in
        `agreement_share` of visits a signed agreement."""
        if not self.visits:
            return
        card = self.rng.choice(self.visits)
        client, visit_id, now = self.client, card["id"], self.now()
        home = (card.get("borrower") or {}).get("home_geo") or SHANGHAI
        self.recorded.append(
            client.record_agent_credential(visit_id, self.badge, borrower_acknowledged=True)
        )
        signs = self.rng.random() < agreement_share
        report = client.record_visit_report(
            visit_id,
            arrived_at=now - timedelta(minutes=3),
            contacted_at=now - timedelta(minutes=2),
            departed_at=now,
            outcome="agreement_signed" if signs else self.rng.choice(OUTCOMES),
            location={"lat": home["lat"], "lon": home["lon"], "accuracy_m": 10},
        )
        self.recorded.append(report)
        if signs:
            self._sign_agreement(card, now.date(), f"{home['lat']:.6f}", f"{home['lon']:.6f}")

    def _sign_agreement(self, card: Mapping[str, Any], due: date, lat: str, lon: str) -> None:
        """Three monthly instalments of 400.00 from `due`, signed with two small images."""
        borrower = card.get("borrower") or {}
        borrower_signature = tiny_png(self.rng)
        agent_signature = tiny_png(self.rng)
        record_id = self.client.record_agreement(
            visit_id=card["id"],
            case_id=card["case_id"],
            installments=[(due + timedelta(days=30 * n), "400.00") for n in (1, 2, 3)],
            currency=borrower.get("currency", "CNY"),
            template_id="repayment-plan-zh",
            template_version=1,
            borrower_signature=borrower_signature,
            agent_signature=agent_signature,
            signed_at=self.now(),
            lat=lat,
            lon=lon,
        )
        self.recorded.append(record_id)


def tiny_png(rng: random.Random) -> bytes:
    """A valid 2x2 PNG of random colour: a stand-in for a signature image or a photo."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    pixels = bytes(rng.randrange(256) for _ in range(3))
    raw = b"".join(b"\x00" + pixels * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
