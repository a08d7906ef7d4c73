"""The reference offline client: what a phone does to record, push, pull and purge.

A mobile team can read this package as the executable specification of docs/sync.md:

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
- A card leaves the phone at its `expires_at` even offline (`sync.cards.is_expired`).

The modules, from the wire inwards:

- `transport`: the Transport protocol, `HttpTransport`, `RetryingTransport` (backoff) and
  the client's failures.
- `session`: login, token refresh, authenticated requests, the wipe on revocation.
- `store`: the local SQLite store; every SQL string of the client.
- `bodies`: the body of each kind of record, built from the agent's input (pure).
- `uploads`: blob uploads, whole or in resumable chunks.
- `protocol`: push, purge acknowledgements, pull.
- `field_client`: `FieldClient`, the facade a phone app (or a test) uses.

The transport is injected (`HttpTransport` here, a fake in tests), and so are the clock,
sleep and randomness.
"""

from .bodies import TYPED_ID_FIELD, VISIT_REPORT_FIELDS
from .field_client import FieldClient
from .protocol import BATCH_REFUSALS, MAX_BATCH, MAX_PULL_PAGES, SyncResult
from .store import ACKNOWLEDGED, ClientReport, OutboxEntry
from .transport import (
    AuthFailed,
    BackoffPolicy,
    ClientError,
    DeviceRevoked,
    HttpTransport,
    RequestRefused,
    RetryingTransport,
    Transport,
    TransportError,
    TransportResponse,
    Unreachable,
)
from .uploads import CHUNK_BYTES

__all__ = [
    "ACKNOWLEDGED",
    "BATCH_REFUSALS",
    "CHUNK_BYTES",
    "MAX_BATCH",
    "MAX_PULL_PAGES",
    "TYPED_ID_FIELD",
    "VISIT_REPORT_FIELDS",
    "AuthFailed",
    "BackoffPolicy",
    "ClientError",
    "ClientReport",
    "DeviceRevoked",
    "FieldClient",
    "HttpTransport",
    "OutboxEntry",
    "RequestRefused",
    "RetryingTransport",
    "SyncResult",
    "Transport",
    "TransportError",
    "TransportResponse",
    "Unreachable",
]
