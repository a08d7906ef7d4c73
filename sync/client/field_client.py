"""`FieldClient`: one agent's phone, the face of the reference client."""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..cards import is_expired
from . import bodies
from .protocol import MAX_BATCH, SyncProtocol, SyncResult
from .session import Session
from .store import ClientReport, LocalStore, OutboxEntry
from .transport import BackoffPolicy, DeviceRevoked, RetryingTransport, Transport, Unreachable
from .uploads import sniff_content_type, upload_pending_blobs


class FieldClient:
    """One agent's phone: a local store, a transport, and the sync protocol."""

    def __init__(
        self,
        transport: Transport,
        store_path: str | Path,
        username: str,
        password: str,
        device_id: str | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] | None = None,
        backoff: BackoffPolicy = BackoffPolicy(),  # noqa: B008 - frozen, safe to share
        rng: random.Random | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        batch_size: int = MAX_BATCH,
        pull_limit: int = 50,
    ) -> None:
        self._clock = clock
        self._new_id = new_id
        self._store = LocalStore(store_path)
        retrying = RetryingTransport(
            transport, backoff, sleep or time.sleep, rng or random.Random()
        )
        self._session = Session(retrying, self._store, username, password, device_id, clock)
        self._protocol = SyncProtocol(self._store, self._session, clock, batch_size, pull_limit)

    @property
    def username(self) -> str:
        """The agent's username."""
        return self._session.username

    @property
    def device_id(self) -> str | None:
        """This phone's device id, sent with every request; None until its first login
        enrols it (when it was given none)."""
        return self._session.device_id

    def close(self) -> None:
        """Close the local store."""
        self._store.close()

    # --- recording (works offline) ---------------------------------------------------

    def record_visit_report(
        self, visit_id: int, *, arrived_at: datetime | str, outcome: str, **fields: Any
    ) -> str:
        """Queue a visit report; fields are the body fields of docs/sync.md."""
        body = bodies.visit_report_body(arrived_at, outcome, fields)
        return self._enqueue("visit_report", visit_id, body)

    def record_borrower_identity(self, visit_id: int, last6: str) -> str:
        """Queue the last 6 ID characters the agent typed; they leave the device once acked."""
        return self._enqueue("id_confirmation", visit_id, bodies.borrower_identity_body(last6))

    def record_agent_credential(
        self, visit_id: int, badge_number: str, borrower_acknowledged: bool
    ) -> str:
        """Queue that the agent showed its badge, before contact with the borrower."""
        body = bodies.agent_credential_body(badge_number, borrower_acknowledged)
        return self._enqueue("id_confirmation", visit_id, body)

    def record_agreement(
        self,
        visit_id: int,
        case_id: int,
        installments: Sequence[Mapping[str, Any] | tuple[date | str, Decimal | str | int]],
        currency: str,
        template_id: str,
        template_version: int,
        borrower_signature: bytes,
        agent_signature: bytes,
        signed_at: datetime,
        lat: float | str,
        lon: float | str,
    ) -> str:
        """Store both signature images, compute the content hash, queue the agreement."""
        record_id = self._new_id()
        with self._store.transaction():  # The signatures and the record land together or not.
            body = bodies.agreement_body(
                agreement_id=record_id,
                visit_id=visit_id,
                case_id=case_id,
                installments=installments,
                currency=currency,
                template_id=template_id,
                template_version=template_version,
                borrower_signature_sha256=self.add_blob(borrower_signature),
                agent_signature_sha256=self.add_blob(agent_signature),
                signed_at=signed_at,
                lat=lat,
                lon=lon,
            )
            return self._enqueue("agreement", visit_id, body, record_id=record_id)

    def add_blob(self, data: bytes, content_type: str | None = None) -> str:
        """Keep a blob for upload before the records that reference it; returns its SHA-256."""
        self._session.check_not_wiped()
        sha256 = hashlib.sha256(data).hexdigest()
        self._store.add_blob(sha256, content_type or sniff_content_type(data), data)
        return sha256

    def _enqueue(
        self, kind: str, visit_id: int, body: Mapping[str, Any], record_id: str | None = None
    ) -> str:
        self._session.check_not_wiped()
        record_id = record_id or self._new_id()
        self._store.enqueue(record_id, kind, visit_id, bodies.iso(self._clock()), body)
        return record_id

    # --- reading the local state ------------------------------------------------------

    def cards(self) -> list[dict[str, Any]]:
        """The visits (with borrower cards) the device may show now; expired ones are dropped."""
        self.expire_cards()
        return self._store.card_visits()

    def held_cards(self) -> list[tuple[int, datetime | None]]:
        """Every visit in the store with its card's expiry, expiring nothing (for audits)."""
        return self._store.card_expiries()

    def expire_cards(self) -> int:
        """Delete every card past its `expires_at` on the device clock; works offline."""
        now = self._clock()
        expired = [
            visit_id
            for visit_id, expires_at in self._store.card_expiries()
            if is_expired(expires_at, now)
        ]
        self._store.drop_cards(expired)
        return len(expired)

    def outbox_state(self) -> list[OutboxEntry]:
        """Every record in the outbox, in device order."""
        return self._store.outbox_entries()

    def report(self) -> ClientReport:
        """Counts of what the device holds now."""
        return self._store.report()

    # --- the protocol -----------------------------------------------------------------

    def login(self) -> None:
        """Exchange the password and device id for a token pair."""
        self._session.login()

    def sync(self) -> SyncResult:
        """Upload blobs, push the outbox, acknowledge purges, pull, expire cards."""
        result = SyncResult()
        protocol = self._protocol
        try:
            self._session.check_not_wiped()
            if not self._session.has_tokens():
                self._session.login()
            upload_pending_blobs(self._store, self._session, result)
            protocol.push_outbox(result)
            if protocol.retry_waits_on_blobs(result):
                # A retry said a blob is missing: upload it now, then resend once.
                upload_pending_blobs(self._store, self._session, result)
                protocol.push_outbox(result)
            protocol.send_purge_acks(result)
            protocol.pull(result)
            protocol.send_purge_acks(result)
            self._store.forget_sent_blobs()
        except Unreachable as error:
            result.stopped, result.error = "unreachable", str(error)
        except DeviceRevoked as error:
            result.stopped, result.error = "wiped", str(error)
            result.unsent_at_wipe = int(self._store.meta("unsent_at_wipe") or 0)
        result.cards_expired = 0 if result.stopped == "wiped" else self.expire_cards()
        return result
