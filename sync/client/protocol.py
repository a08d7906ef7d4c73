"""The push/pull protocol of docs/sync.md, step by step, over the local store.

- Push: the queued records in device order, in batches; a batch refused as a whole is split
  until the one bad record is found and rejected locally, so it cannot hold back the others.
- Purge acknowledgements: sent with every push and on their own; kept until confirmed.
- Pull: pages to the end of the feed; each page is applied, cursor included, in one local
  transaction. A pull blocked by overdue purges confirms them and asks once more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .bodies import iso
from .session import Session
from .store import LocalStore
from .transport import RequestRefused, TransportResponse

MAX_BATCH = 100
MAX_PULL_PAGES = 1000
# Answers to a whole push that say "this content can never be stored as sent".
BATCH_REFUSALS = frozenset({400, 413, 422})


@dataclass
class SyncResult:
    """What one `sync()` pass did; `stopped` is None when every step finished."""

    stopped: str | None = None  # "unreachable" or "wiped"
    error: str | None = None
    blobs_uploaded: int = 0
    records_sent: int = 0
    acknowledged: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    pages: int = 0
    upserts: int = 0
    purges: int = 0
    acks_confirmed: int = 0
    cards_expired: int = 0
    unsent_at_wipe: int = 0


class SyncProtocol:
    """The steps of a sync pass; each one updates a SyncResult."""

    def __init__(
        self,
        store: LocalStore,
        session: Session,
        clock: Callable[[], datetime],
        batch_size: int,
        pull_limit: int,
    ) -> None:
        self._store = store
        self._session = session
        self._clock = clock
        self._batch_size = max(1, min(batch_size, MAX_BATCH))
        self._pull_limit = pull_limit

    # --- push -------------------------------------------------------------------------

    def push_outbox(self, result: SyncResult) -> None:
        """Push every queued record, in device order and in batches."""
        queued = self._store.queued_records()
        size = self._batch_size
        batches = [queued[i : i + size] for i in range(0, len(queued), size)]
        while batches:
            batch = batches.pop(0)
            later = [record for rest in batches for record in rest]
            response = self._push(batch, later)
            if response.status == 200:
                result.records_sent += len(batch)
                self._apply_push(response.body, result)
            elif response.status not in BATCH_REFUSALS:
                raise RequestRefused(response.status, response.error_code, response.error_message)
            elif len(batch) > 1:
                # The batch as a whole was refused (too large, or one unreadable record):
                # split it so that one bad record cannot hold the others back.
                half = len(batch) // 2
                batches[:0] = [batch[:half], batch[half:]]
            else:
                self._reject_locally(batch[0]["id"], response)
                result.rejected.append(batch[0]["id"])

    def retry_waits_on_blobs(self, result: SyncResult) -> bool:
        """True when a record was told to retry while a blob is still waiting for upload."""
        return bool(result.retrying) and self._store.has_pending_blobs()

    def _push(
        self, batch: Sequence[Mapping[str, Any]], later: Sequence[Mapping[str, Any]]
    ) -> TransportResponse:
        oldest = min((record["recorded_at"] for record in later), default=None)
        payload: dict[str, Any] = {
            "device_time": iso(self._clock()),
            "queue": {"pending": len(later), "oldest_recorded_at": oldest},
            "records": [dict(record) for record in batch],
        }
        acks = self._store.pending_acks()
        if acks:
            payload["purge_acks"] = acks
        return self._session.request("POST", "/sync/push", json=payload)

    def _apply_push(self, body: Mapping[str, Any], result: SyncResult) -> None:
        with self._store.transaction():
            for outcome in body.get("outcomes", ()):
                state = self._store.apply_outcome(outcome)
                bucket = {"acknowledged": result.acknowledged, "rejected": result.rejected}
                bucket.get(state, result.retrying).append(outcome["record_id"])
            self._store.confirm_acks(body.get("purges_confirmed") or ())

    def _reject_locally(self, record_id: str, response: TransportResponse) -> None:
        outcome = {
            "record_id": record_id,
            "status": "rejected",
            "reason": response.error_code or f"http_{response.status}",
            "message": response.error_message,
        }
        with self._store.transaction():
            self._store.apply_outcome(outcome)

    # --- purge acknowledgements ---------------------------------------------------------

    def send_purge_acks(self, result: SyncResult) -> None:
        """Tell the server which purged cards are gone; forget the ones it confirms."""
        acks = self._store.pending_acks()
        if not acks:
            return
        response = self._session.request("POST", "/sync/purge-acks", json={"visit_ids": acks})
        if response.status != 200:
            return  # Kept, and offered again with the next push: a refusal must not stop the pull.
        with self._store.transaction():
            result.acks_confirmed += self._store.confirm_acks(response.body.get("confirmed") or ())

    # --- pull -------------------------------------------------------------------------

    def pull(self, result: SyncResult) -> None:
        """Pull pages until the feed has no more."""
        cursor_reset = unblocked = False
        for _ in range(MAX_PULL_PAGES):
            params: dict[str, Any] = {"limit": self._pull_limit}
            cursor = self._store.meta("cursor")
            if cursor:
                params["cursor"] = cursor
            response = self._session.request("GET", "/sync/pull", params=params)
            if response.error_code == "invalid_cursor" and cursor:
                if cursor_reset:
                    raise RequestRefused(400, "invalid_cursor", response.error_message)
                # The server no longer knows this position: start over from a fresh feed.
                cursor_reset = True
                self._store.delete_meta("cursor")
                continue
            if response.status != 200:
                raise RequestRefused(response.status, response.error_code, response.error_message)
            page = response.body
            self._apply_page(page, result)
            result.pages += 1
            blocked = page.get("blocked")
            if blocked and not unblocked:
                # No new cards until outstanding purges are confirmed: confirm, then ask again.
                unblocked = True
                self.send_purge_acks(result)
                continue
            if not page.get("has_more"):
                return

    def _apply_page(self, page: Mapping[str, Any], result: SyncResult) -> None:
        """Apply one page and advance the cursor in the same local transaction, so a page
        is either fully applied or asked for again with the old cursor."""
        now = iso(self._clock())
        with self._store.transaction():
            for visit in page.get("upserts") or ():
                borrower = visit.get("borrower")
                expires_at = borrower.get("expires_at") if isinstance(borrower, Mapping) else None
                self._store.put_card(visit, _normalized(expires_at))
                result.upserts += 1
            # Purges after upserts: if a page holds both for one visit, the card goes.
            purge_orders = list(page.get("purges") or ())
            blocked = page.get("blocked") or {}
            purge_orders += [
                {"visit_id": visit_id, "reason": blocked.get("reason")}
                for visit_id in blocked.get("visit_ids") or ()
            ]
            for order in purge_orders:
                self._store.purge_card(order["visit_id"], order.get("reason"), now)
                result.purges += 1
            for outcome in page.get("outcomes") or ():
                state = self._store.apply_outcome(outcome)
                if state == "acknowledged" and outcome["record_id"] not in result.acknowledged:
                    result.acknowledged.append(outcome["record_id"])
            if page.get("cursor"):
                self._store.set_meta("cursor", page["cursor"])


def _normalized(moment: str | None) -> str | None:
    return None if moment is None else iso(datetime.fromisoformat(moment))
