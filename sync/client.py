"""The reference offline client: what a phone does to record, push, pull and purge.

A mobile team can read this module as the executable specification of docs/sync.md:

- Every record goes to a local SQLite outbox first, with a client UUID and a device
  sequence number, and stays there until the server answers for it. Nothing is sent twice
  on purpose, but anything may be sent twice by accident: the server deduplicates by id.
- `sync()` runs the steps in this order: upload blobs, push the outbox in batches, send
  purge acknowledgements, pull to the end of the feed, expire cards.
- Network failures, 5xx and 429 are retried with capped exponential backoff and jitter,
  bounded by attempts and by total waiting time; after that the pass stops and everything
  stays queued for the next one.
- An expired access token is refreshed (or the agent logs in again) and the request
  retried, so records never depend on a token's lifetime.
- `device_revoked` wipes the store: cards, blobs, outbox and tokens.

The transport is injected (`HttpTransport` here, a fake in tests), and so are the clock,
sleep and randomness.
"""

from __future__ import annotations

import hashlib
import http.client
import json as jsonlib
import random
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from .canonical import agreement_content_hash, canonical_amount

MAX_BATCH = 100
# Blobs above this go through the resumable chunked upload, in chunks of this size.
CHUNK_BYTES = 1024 * 1024
MAX_PULL_PAGES = 1000
# Answers to a whole push that say "this content can never be stored as sent".
BATCH_REFUSALS = frozenset({400, 413, 422})
ACKNOWLEDGED = frozenset({"accepted", "flagged", "duplicate"})
TYPED_ID_FIELD = "id_last6"
VISIT_REPORT_FIELDS = frozenset(
    {
        "arrived_at",
        "departed_at",
        "contacted_at",
        "outcome",
        "promise_amount",
        "promise_date",
        "notes",
        "location",
        "third_party_present",
        "debt_discussed_with_third_party",
        "attachments",
    }
)
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"%PDF-", "application/pdf"),
)


class ClientError(Exception):
    """Base of every failure the reference client reports."""


class TransportError(ClientError):
    """The request or its response was lost on the network."""


class Unreachable(ClientError):
    """The server did not answer within the retry budget; everything stays queued."""


class DeviceRevoked(ClientError):
    """The server revoked this device; the local store has been wiped."""


class AuthFailed(ClientError):
    """The server refused the username, password or device."""


class RequestRefused(ClientError):
    """The server refused a request in a way the client cannot work around."""

    def __init__(self, status: int, code: str | None, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


@dataclass(frozen=True)
class TransportResponse:
    """An HTTP answer: header names are lowercase, `body` is parsed JSON or raw bytes."""

    status: int
    headers: Mapping[str, str]
    body: Any

    @property
    def error_code(self) -> str | None:
        """The `error.code` of an error body, if any."""
        error = self.body.get("error") if isinstance(self.body, Mapping) else None
        return error.get("code") if isinstance(error, Mapping) else None

    @property
    def error_details(self) -> Mapping[str, Any]:
        """The `error.details` of an error body, or {}."""
        error = self.body.get("error") if isinstance(self.body, Mapping) else None
        details = error.get("details") if isinstance(error, Mapping) else None
        return details if isinstance(details, Mapping) else {}

    @property
    def error_message(self) -> str:
        """The `error.message` of an error body, or the status line."""
        error = self.body.get("error") if isinstance(self.body, Mapping) else None
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])
        return f"HTTP {self.status}"


class Transport(Protocol):
    """Sends one request; raises TransportError when no answer arrives."""

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> TransportResponse: ...


class HttpTransport:
    """HTTP over urllib; `base_url` ends with /api/v1 and paths are relative to it."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError("base_url must be an http:// or https:// URL")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # A direct connection only: an environment proxy must never see tokens or cards.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> TransportResponse:
        """Send one request and read the whole answer."""
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        sent_headers = dict(headers or {})
        if json is not None:
            data = jsonlib.dumps(json).encode("utf-8")
            sent_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=sent_headers, method=method)  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return _parsed(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            with error:
                try:
                    return _parsed(error.code, error.headers, error.read())
                except (OSError, http.client.HTTPException) as lost:
                    raise TransportError(f"{method} {path}: {lost}") from lost
        except (OSError, http.client.HTTPException) as error:
            raise TransportError(f"{method} {path}: {error}") from error


def _parsed(status: int, headers: Any, raw: bytes) -> TransportResponse:
    lowered = {name.lower(): value for name, value in headers.items()}
    body: Any = raw or None
    if raw and "json" in lowered.get("content-type", ""):
        try:
            body = jsonlib.loads(raw)
        except ValueError as error:
            raise TransportError(f"unreadable JSON answer: {error}") from error
    return TransportResponse(status, lowered, body)


@dataclass(frozen=True)
class BackoffPolicy:
    """Capped exponential backoff with jitter, bounded by attempts and total wait."""

    base_s: float = 0.5
    cap_s: float = 30.0
    max_attempts: int = 6
    max_total_s: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt `attempt + 1`; honours the server's Retry-After."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        # Half fixed, half random: spreads a fleet reconnecting at once, never zero.
        jittered = ceiling / 2 + rng.uniform(0, ceiling / 2)
        return max(jittered, retry_after or 0.0)


@dataclass(frozen=True)
class OutboxEntry:
    """One record in the local outbox and what the server said about it."""

    id: str
    kind: str
    visit_id: int
    device_seq: int
    recorded_at: str
    state: str  # queued | acknowledged | rejected
    status: str | None  # the server's last status for it
    reason: str | None
    flags: tuple[str, ...]
    id_verification: str | None
    receipt: Mapping[str, Any] | None
    body: Mapping[str, Any]


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


@dataclass(frozen=True)
class ClientReport:
    """Counts of what the device holds now."""

    queued: int
    acknowledged: int
    flagged: int
    rejected: int
    oldest_queued_at: str | None
    cards: int
    purge_acks_pending: int
    blobs_pending: int
    blobs_refused: int
    wiped: bool
    unsent_at_wipe: int


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    device_seq INTEGER NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    visit_id INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'acknowledged', 'rejected')),
    status TEXT,
    reason TEXT,
    outcome TEXT,
    id_verification TEXT,
    receipt TEXT
);
CREATE TABLE IF NOT EXISTS cards (visit_id INTEGER PRIMARY KEY, visit TEXT NOT NULL,
                                  expires_at TEXT);
CREATE TABLE IF NOT EXISTS purge_acks (visit_id INTEGER PRIMARY KEY, reason TEXT,
                                       purged_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (
    sha256 TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    data BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'uploaded', 'refused')),
    upload_id TEXT,
    refused_reason TEXT
);
"""


class FieldClient:
    """One agent's phone: a local store, a transport, and the sync protocol."""

    def __init__(
        self,
        transport: Transport,
        store_path: str | Path,
        username: str,
        password: str,
        device_id: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] | None = None,
        backoff: BackoffPolicy = BackoffPolicy(),  # noqa: B008 - frozen, safe to share
        rng: random.Random | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        batch_size: int = MAX_BATCH,
        pull_limit: int = 50,
    ) -> None:
        self._transport = transport
        self.username = username
        self._password = password
        self.device_id = device_id
        self._clock = clock
        self._sleep = sleep or time.sleep
        self._backoff = backoff
        self._rng = rng or random.Random()
        self._new_id = new_id
        self._batch_size = max(1, min(batch_size, MAX_BATCH))
        self._pull_limit = pull_limit
        self._db = sqlite3.connect(str(store_path), isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        # Deleted rows are overwritten on disk, so a wipe or purge leaves no borrower data.
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the local store."""
        self._db.close()

    # --- recording (works offline) ---------------------------------------------------

    def record_visit_report(
        self, visit_id: int, *, arrived_at: datetime | str, outcome: str, **fields: Any
    ) -> str:
        """Queue a visit report; fields are the body fields of docs/sync.md."""
        unknown = set(fields) - VISIT_REPORT_FIELDS
        if unknown:
            raise TypeError(f"unknown visit_report fields: {sorted(unknown)}")
        body = {"arrived_at": arrived_at, "outcome": outcome, **fields}
        return self._enqueue("visit_report", visit_id, _wire(body))

    def record_borrower_identity(self, visit_id: int, last6: str) -> str:
        """Queue the last 6 ID characters the agent typed; they leave the device once acked."""
        if not (len(last6) == 6 and last6.isascii() and last6.isalnum()):
            raise ValueError("type exactly the last 6 letters or digits of the ID document")
        body = {"confirmation_kind": "borrower_identity", TYPED_ID_FIELD: last6}
        return self._enqueue("id_confirmation", visit_id, body)

    def record_agent_credential(
        self, visit_id: int, badge_number: str, borrower_acknowledged: bool
    ) -> str:
        """Queue that the agent showed its badge, before contact with the borrower."""
        body = {
            "confirmation_kind": "agent_credential",
            "badge_number": badge_number,
            "borrower_acknowledged": borrower_acknowledged,
        }
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
        plan = [_installment(item) for item in installments]
        total = sum((Decimal(item["amount"]) for item in plan), Decimal(0))
        with self._transaction():  # The signatures and the record land together or not at all.
            body: dict[str, Any] = {
                "agreement_id": record_id,
                "case_id": case_id,
                "visit_id": visit_id,
                "currency": currency,
                "total_amount": canonical_amount("total_amount", total),
                "installments": plan,
                "template_id": template_id,
                "template_version": template_version,
                "borrower_signature_sha256": self.add_blob(borrower_signature),
                "agent_signature_sha256": self.add_blob(agent_signature),
                "signed_at": _iso(signed_at),
                # Six fraction digits as text, so the server rounds nothing (canonical form).
                "signed_lat": f"{Decimal(str(lat)):.6f}",
                "signed_lon": f"{Decimal(str(lon)):.6f}",
            }
            body["content_hash"] = agreement_content_hash(body)
            return self._enqueue("agreement", visit_id, body, record_id=record_id)

    def add_blob(self, data: bytes, content_type: str | None = None) -> str:
        """Keep a blob for upload before the records that reference it; returns its SHA-256."""
        self._check_not_wiped()
        sha256 = hashlib.sha256(data).hexdigest()
        kind = content_type or _sniff(data)
        self._db.execute(
            "INSERT OR IGNORE INTO blobs (sha256, content_type, data) VALUES (?, ?, ?)",
            (sha256, kind, data),
        )
        return sha256

    def _enqueue(
        self, kind: str, visit_id: int, body: Mapping[str, Any], record_id: str | None = None
    ) -> str:
        self._check_not_wiped()
        record_id = record_id or self._new_id()
        with self._transaction():
            seq = int(self._meta("device_seq") or 0) + 1
            self._set_meta("device_seq", str(seq))
            self._db.execute(
                "INSERT INTO outbox (id, device_seq, kind, visit_id, recorded_at, body)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (record_id, seq, kind, visit_id, _iso(self._clock()), jsonlib.dumps(body)),
            )
        return record_id

    # --- reading the local state ------------------------------------------------------

    def cards(self) -> list[dict[str, Any]]:
        """The visits (with borrower cards) the device may show now; expired ones are dropped."""
        self.expire_cards()
        rows = self._db.execute("SELECT visit FROM cards ORDER BY visit_id").fetchall()
        return [jsonlib.loads(row["visit"]) for row in rows]

    def held_cards(self) -> list[tuple[int, datetime | None]]:
        """Every visit in the store with its card's expiry, expiring nothing (for audits)."""
        rows = self._db.execute("SELECT visit_id, expires_at FROM cards ORDER BY visit_id")
        return [(row[0], datetime.fromisoformat(row[1]) if row[1] else None) for row in rows]

    def expire_cards(self) -> int:
        """Delete every card past its `expires_at` on the device clock; works offline."""
        now = self._clock()
        expired = [
            row["visit_id"]
            for row in self._db.execute("SELECT visit_id, expires_at FROM cards")
            if row["expires_at"] and datetime.fromisoformat(row["expires_at"]) <= now
        ]
        with self._transaction():
            for visit_id in expired:
                self._db.execute("DELETE FROM cards WHERE visit_id = ?", (visit_id,))
        return len(expired)

    def outbox_state(self) -> list[OutboxEntry]:
        """Every record in the outbox, in device order."""
        rows = self._db.execute("SELECT * FROM outbox ORDER BY device_seq").fetchall()
        return [_entry(row) for row in rows]

    def report(self) -> ClientReport:
        """Counts of what the device holds now."""
        count = self._count
        oldest = self._db.execute(
            "SELECT MIN(recorded_at) FROM outbox WHERE state = 'queued'"
        ).fetchone()[0]
        return ClientReport(
            queued=count("outbox", "state = 'queued'"),
            acknowledged=count("outbox", "state = 'acknowledged'"),
            flagged=count("outbox", "state = 'acknowledged' AND status = 'flagged'"),
            rejected=count("outbox", "state = 'rejected'"),
            oldest_queued_at=oldest,
            cards=count("cards", "1"),
            purge_acks_pending=count("purge_acks", "1"),
            blobs_pending=count("blobs", "state = 'pending'"),
            blobs_refused=count("blobs", "state = 'refused'"),
            wiped=self._meta("wiped_at") is not None,
            unsent_at_wipe=int(self._meta("unsent_at_wipe") or 0),
        )

    # --- the protocol -----------------------------------------------------------------

    def login(self) -> None:
        """Exchange the password and device id for a token pair."""
        self._check_not_wiped()
        body = {"username": self.username, "password": self._password, "device_id": self.device_id}
        response = self._send("POST", "/auth/login", json=body)
        if response.status == 401 and response.error_code == "device_revoked":
            self._wipe()
            raise DeviceRevoked(response.error_message)
        if response.status != 200:
            raise AuthFailed(f"{response.status} {response.error_code}: {response.error_message}")
        self._save_tokens(response.body)

    def sync(self) -> SyncResult:
        """Upload blobs, push the outbox, acknowledge purges, pull, expire cards."""
        result = SyncResult()
        try:
            self._check_not_wiped()
            if self._meta("access_token") is None:
                self.login()
            self._upload_blobs(result)
            self._push_outbox(result)
            if self._retry_waits_on_blobs(result):
                # A retry said a blob is missing: upload it now, then resend once.
                self._upload_blobs(result)
                self._push_outbox(result)
            self._send_purge_acks(result)
            self._pull(result)
            self._send_purge_acks(result)
            self._forget_sent_blobs()
        except Unreachable as error:
            result.stopped, result.error = "unreachable", str(error)
        except DeviceRevoked as error:
            result.stopped, result.error = "wiped", str(error)
            result.unsent_at_wipe = int(self._meta("unsent_at_wipe") or 0)
        result.cards_expired = 0 if result.stopped == "wiped" else self.expire_cards()
        return result

    # --- attachments ------------------------------------------------------------------

    def _upload_blobs(self, result: SyncResult) -> None:
        rows = self._db.execute(
            "SELECT sha256, content_type, length(data) AS size, upload_id FROM blobs"
            " WHERE state = 'pending' ORDER BY sha256"
        ).fetchall()
        for row in rows:
            sha256 = row["sha256"]
            data = self._db.execute("SELECT data FROM blobs WHERE sha256 = ?", (sha256,)).fetchone()
            if row["size"] > CHUNK_BYTES:
                response = self._upload_chunked(sha256, row["content_type"], data[0], row)
            else:
                response = self._request(
                    "PUT",
                    f"/attachments/{sha256}",
                    data=data[0],
                    headers={"Content-Type": row["content_type"]},
                )
            if response is None:
                continue  # A chunked upload that is not complete yet resumes next time.
            if response.status in (200, 201):
                self._set_blob(sha256, "uploaded")
                result.blobs_uploaded += 1
            elif response.status in (400, 413, 415, 422):
                # Size, type or hash refused: resending the same bytes cannot succeed.
                reason = f"{response.error_code}: {response.error_message}"
                self._set_blob(sha256, "refused", reason)
            elif response.status == 404:
                self._set_blob(sha256, "pending")  # The upload session expired: start over.
            else:
                raise RequestRefused(response.status, response.error_code, response.error_message)

    def _set_blob(self, sha256: str, state: str, reason: str | None = None) -> None:
        self._db.execute(
            "UPDATE blobs SET state = ?, refused_reason = ?, upload_id = NULL WHERE sha256 = ?",
            (state, reason, sha256),
        )

    def _upload_chunked(
        self, sha256: str, content_type: str, data: bytes, row: sqlite3.Row
    ) -> TransportResponse | None:
        """Resumable upload: open (or resume) a session, then send chunks from the offset
        the server confirmed. None means not complete yet."""
        upload_id = row["upload_id"]
        state = self._request("GET", f"/attachments/uploads/{upload_id}") if upload_id else None
        if state is None or state.status != 200:
            state = self._request(
                "POST",
                f"/attachments/{sha256}/uploads",
                json={"size": len(data), "content_type": content_type},
            )
            if state.status not in (200, 201):
                return state
            upload_id = state.body["upload_id"]
            self._db.execute("UPDATE blobs SET upload_id = ? WHERE sha256 = ?", (upload_id, sha256))
        received, complete = int(state.body.get("received", 0)), bool(state.body.get("complete"))
        for _ in range(3 * (len(data) // CHUNK_BYTES + 2)):
            if complete:
                return state
            if received >= len(data):
                return None  # Every byte is there but the server has not finished verifying.
            state = self._request(
                "PATCH",
                f"/attachments/uploads/{upload_id}",
                data=data[received : received + CHUNK_BYTES],
                headers={
                    "Upload-Offset": str(received),
                    "Content-Type": "application/octet-stream",
                },
            )
            if state.status == 409 and state.error_code == "offset_mismatch":
                # An earlier copy of a chunk landed after all: go on from where the server is.
                received = int(state.error_details["received"])
                if received >= len(data):
                    state = self._request("GET", f"/attachments/uploads/{upload_id}")
                    complete = state.status == 200 and bool(state.body.get("complete"))
                continue
            if state.status != 200:
                return state
            received, complete = int(state.body["received"]), bool(state.body["complete"])
        return None

    def _forget_sent_blobs(self) -> None:
        """Drop uploaded blobs no queued record needs: signatures are borrower data too."""
        needed: set[str] = set()
        for row in self._db.execute("SELECT kind, body FROM outbox WHERE state = 'queued'"):
            needed |= _blob_refs(row["kind"], jsonlib.loads(row["body"]))
        for row in self._db.execute("SELECT sha256 FROM blobs WHERE state = 'uploaded'"):
            if row["sha256"] not in needed:
                self._db.execute("DELETE FROM blobs WHERE sha256 = ?", (row["sha256"],))

    # --- push -------------------------------------------------------------------------

    def _push_outbox(self, result: SyncResult) -> None:
        queued = self._db.execute(
            "SELECT * FROM outbox WHERE state = 'queued' ORDER BY device_seq"
        ).fetchall()
        batches = [
            queued[i : i + self._batch_size] for i in range(0, len(queued), self._batch_size)
        ]
        while batches:
            batch = batches.pop(0)
            later = [row for rest in batches for row in rest]
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

    def _push(self, batch: list[sqlite3.Row], later: list[sqlite3.Row]) -> TransportResponse:
        oldest = min((row["recorded_at"] for row in later), default=None)
        payload: dict[str, Any] = {
            "device_time": _iso(self._clock()),
            "queue": {"pending": len(later), "oldest_recorded_at": oldest},
            "records": [
                {
                    "id": row["id"],
                    "kind": row["kind"],
                    "visit_id": row["visit_id"],
                    "device_seq": row["device_seq"],
                    "recorded_at": row["recorded_at"],
                    "body": jsonlib.loads(row["body"]),
                }
                for row in batch
            ],
        }
        acks = self._pending_acks()
        if acks:
            payload["purge_acks"] = acks
        return self._request("POST", "/sync/push", json=payload)

    def _apply_push(self, body: Mapping[str, Any], result: SyncResult) -> None:
        with self._transaction():
            for outcome in body.get("outcomes", ()):
                state = self._apply_outcome(outcome)
                bucket = {"acknowledged": result.acknowledged, "rejected": result.rejected}
                bucket.get(state, result.retrying).append(outcome["record_id"])
            self._confirm_acks(body.get("purges_confirmed") or ())

    def _apply_outcome(self, outcome: Mapping[str, Any]) -> str:
        """Record the server's answer for one record; returns its new local state."""
        row = self._db.execute(
            "SELECT state, kind, body FROM outbox WHERE id = ?", (outcome["record_id"],)
        ).fetchone()
        if row is None:
            return "unknown"
        state, status = row["state"], outcome.get("status")
        # Only a queued record changes state: an acknowledgement is never taken back.
        if state == "queued" and status in ACKNOWLEDGED:
            state = "acknowledged"
        elif state == "queued" and status == "rejected":
            state = "rejected"
        elif state == "queued":
            for sha256 in outcome.get("missing_blobs") or ():
                self._db.execute(
                    "UPDATE blobs SET state = 'pending' WHERE sha256 = ? AND state = 'uploaded'",
                    (sha256,),
                )
        body = jsonlib.loads(row["body"])
        if state != "queued":
            # The typed ID characters are needed only until the server has answered.
            body.pop(TYPED_ID_FIELD, None)
        self._db.execute(
            "UPDATE outbox SET state = ?, status = ?, reason = ?, outcome = ?, body = ?,"
            " id_verification = COALESCE(?, id_verification), receipt = COALESCE(?, receipt)"
            " WHERE id = ?",
            (
                state,
                status,
                outcome.get("reason"),
                jsonlib.dumps(dict(outcome)),
                jsonlib.dumps(body),
                outcome.get("id_verification"),
                jsonlib.dumps(outcome["receipt"]) if outcome.get("receipt") else None,
                outcome["record_id"],
            ),
        )
        return state

    def _reject_locally(self, record_id: str, response: TransportResponse) -> None:
        outcome = {
            "record_id": record_id,
            "status": "rejected",
            "reason": response.error_code or f"http_{response.status}",
            "message": response.error_message,
        }
        with self._transaction():
            self._apply_outcome(outcome)

    def _retry_waits_on_blobs(self, result: SyncResult) -> bool:
        return bool(result.retrying) and self._count("blobs", "state = 'pending'") > 0

    # --- purge acknowledgements ---------------------------------------------------------

    def _pending_acks(self) -> list[int]:
        rows = self._db.execute("SELECT visit_id FROM purge_acks ORDER BY visit_id")
        return [row["visit_id"] for row in rows]

    def _confirm_acks(self, visit_ids: Sequence[int]) -> int:
        for visit_id in visit_ids:
            self._db.execute("DELETE FROM purge_acks WHERE visit_id = ?", (visit_id,))
        return len(visit_ids)

    def _send_purge_acks(self, result: SyncResult) -> None:
        acks = self._pending_acks()
        if not acks:
            return
        response = self._request("POST", "/sync/purge-acks", json={"visit_ids": acks})
        if response.status != 200:
            return  # Kept, and offered again with the next push: a refusal must not stop the pull.
        with self._transaction():
            result.acks_confirmed += self._confirm_acks(response.body.get("confirmed") or ())

    # --- pull -------------------------------------------------------------------------

    def _pull(self, result: SyncResult) -> None:
        cursor_reset = unblocked = False
        for _ in range(MAX_PULL_PAGES):
            params: dict[str, Any] = {"limit": self._pull_limit}
            cursor = self._meta("cursor")
            if cursor:
                params["cursor"] = cursor
            response = self._request("GET", "/sync/pull", params=params)
            if response.error_code == "invalid_cursor" and cursor:
                if cursor_reset:
                    raise RequestRefused(400, "invalid_cursor", response.error_message)
                # The server no longer knows this position: start over from a fresh feed.
                cursor_reset = True
                self._delete_meta("cursor")
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
                self._send_purge_acks(result)
                continue
            if not page.get("has_more"):
                return

    def _apply_page(self, page: Mapping[str, Any], result: SyncResult) -> None:
        """Apply one page and advance the cursor in the same local transaction, so a page
        is either fully applied or asked for again with the old cursor."""
        now = _iso(self._clock())
        with self._transaction():
            for visit in page.get("upserts") or ():
                borrower = visit.get("borrower")
                expires_at = borrower.get("expires_at") if isinstance(borrower, Mapping) else None
                self._db.execute(
                    "INSERT OR REPLACE INTO cards (visit_id, visit, expires_at) VALUES (?, ?, ?)",
                    (visit["id"], jsonlib.dumps(visit), _normalized(expires_at)),
                )
                # The card is back: an acknowledgement of an earlier purge of it is stale and
                # must not be mistaken for the purge of this new delivery.
                self._db.execute("DELETE FROM purge_acks WHERE visit_id = ?", (visit["id"],))
                result.upserts += 1
            # Purges after upserts: if a page holds both for one visit, the card goes.
            purge_orders = list(page.get("purges") or ())
            blocked = page.get("blocked") or {}
            purge_orders += [
                {"visit_id": visit_id, "reason": blocked.get("reason")}
                for visit_id in blocked.get("visit_ids") or ()
            ]
            for order in purge_orders:
                self._db.execute("DELETE FROM cards WHERE visit_id = ?", (order["visit_id"],))
                self._db.execute(
                    "INSERT OR REPLACE INTO purge_acks (visit_id, reason, purged_at)"
                    " VALUES (?, ?, ?)",
                    (order["visit_id"], order.get("reason"), now),
                )
                result.purges += 1
            for outcome in page.get("outcomes") or ():
                state = self._apply_outcome(outcome)
                if state == "acknowledged" and outcome["record_id"] not in result.acknowledged:
                    result.acknowledged.append(outcome["record_id"])
            if page.get("cursor"):
                self._set_meta("cursor", page["cursor"])

    # --- requests, tokens, backoff ------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> TransportResponse:
        """An authenticated request; renews the token once on 401, wipes on revocation."""
        for renewed in (False, True):
            sent = {
                **(headers or {}),
                "Authorization": f"Bearer {self._meta('access_token') or ''}",
                "X-Device-Id": self.device_id,
            }
            response = self._send(method, path, json=json, data=data, headers=sent, params=params)
            if response.status != 401:
                return response
            if response.error_code == "device_revoked":
                self._wipe()
                raise DeviceRevoked(response.error_message)
            if renewed:
                raise AuthFailed(f"401 {response.error_code}: {response.error_message}")
            self._renew_tokens()
        raise AssertionError("unreachable")  # pragma: no cover

    def _renew_tokens(self) -> None:
        """Rotate the refresh token; if that fails for any reason but revocation, log in."""
        refresh_token = self._meta("refresh_token")
        if refresh_token:
            response = self._send("POST", "/auth/refresh", json={"refresh_token": refresh_token})
            if response.status == 200:
                self._save_tokens(response.body)
                return
            if response.status == 401 and response.error_code == "device_revoked":
                self._wipe()
                raise DeviceRevoked(response.error_message)
        # Spent, expired or lost (a dropped refresh response spends it): the password remains.
        self.login()

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> TransportResponse:
        """One request with backoff on network errors, 5xx and 429."""
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = self._transport.request(
                    method, path, json=json, data=data, headers=headers, params=params
                )
            except TransportError as error:
                failure = str(error)
            else:
                if response.status < 500 and response.status != 429:
                    return response
                failure = f"{response.status} {response.error_code or ''}".strip()
                retry_after = _seconds(response.headers.get("retry-after"))
            delay = self._backoff.delay(attempt, retry_after, self._rng)
            if attempt >= self._backoff.max_attempts or waited + delay > self._backoff.max_total_s:
                raise Unreachable(f"{method} {path}: gave up after {attempt} attempts: {failure}")
            self._sleep(delay)
            waited += delay

    def _save_tokens(self, body: Mapping[str, Any]) -> None:
        with self._transaction():
            self._set_meta("access_token", body["access_token"])
            self._set_meta("refresh_token", body["refresh_token"])

    # --- wipe -------------------------------------------------------------------------

    def _wipe(self) -> None:
        """Forget everything: the device is no longer trusted with borrower data."""
        unsent = self._count("outbox", "state = 'queued'")
        with self._transaction():
            for table in ("outbox", "cards", "purge_acks", "blobs", "meta"):
                self._db.execute(f"DELETE FROM {table}")
            self._set_meta("wiped_at", _iso(self._clock()))
            self._set_meta("unsent_at_wipe", str(unsent))
        self._db.execute("VACUUM")

    def _check_not_wiped(self) -> None:
        if self._meta("wiped_at") is not None:
            raise DeviceRevoked("this device was revoked and wiped")

    # --- store helpers ----------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row["value"]

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _delete_meta(self, key: str) -> None:
        self._db.execute("DELETE FROM meta WHERE key = ?", (key,))

    def _count(self, table: str, where: str) -> int:
        return self._db.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}").fetchone()[0]


def _entry(row: sqlite3.Row) -> OutboxEntry:
    outcome = jsonlib.loads(row["outcome"]) if row["outcome"] else {}
    return OutboxEntry(
        id=row["id"],
        kind=row["kind"],
        visit_id=row["visit_id"],
        device_seq=row["device_seq"],
        recorded_at=row["recorded_at"],
        state=row["state"],
        status=row["status"],
        reason=row["reason"],
        flags=tuple(flag["code"] for flag in outcome.get("flags") or ()),
        id_verification=row["id_verification"],
        receipt=jsonlib.loads(row["receipt"]) if row["receipt"] else None,
        body=jsonlib.loads(row["body"]),
    )


def _blob_refs(kind: str, body: Mapping[str, Any]) -> set[str]:
    refs = set(body.get("attachments") or ())
    if kind == "agreement":
        refs |= {body["borrower_signature_sha256"], body["agent_signature_sha256"]}
    return refs


def _installment(item: Mapping[str, Any] | tuple[Any, Any]) -> dict[str, str]:
    due, amount = (item["due_date"], item["amount"]) if isinstance(item, Mapping) else item
    due_text = due.isoformat() if isinstance(due, date) else str(due)
    return {"due_date": due_text, "amount": canonical_amount("installments.amount", amount)}


def _wire(value: Any) -> Any:
    """Body values as JSON: aware datetimes in UTC, dates ISO, decimals as text."""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        return {key: _wire(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [_wire(item) for item in value]
    return value


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _normalized(moment: str | None) -> str | None:
    return None if moment is None else _iso(datetime.fromisoformat(moment))


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None  # An HTTP-date Retry-After: the computed backoff is good enough.


def _sniff(data: bytes) -> str:
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise ValueError("unknown blob type: pass content_type (image/png, image/jpeg, ...)")
