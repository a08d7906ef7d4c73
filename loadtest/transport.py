"""The one transport the load tests put between a phone and the server.

`FaultyTransport` wraps a real transport (HTTP on loopback). It counts every answer the
server gave in a `Meter` (5xx, "database is locked", requests that got no answer, push
latency, every record a push acknowledged), and, while `enabled`, injects faults into a
share of sync and attachment requests: a request lost before the server, an answer lost
after the server committed, a batch delivered twice, an older batch delivered again after
a newer one, a 503. The meter counts what the server answered, before any injected fault.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sync.client import ACKNOWLEDGED, Transport, TransportError, TransportResponse

FAULTS = ("lost_request", "lost_answer", "duplicate", "stale_replay", "server_error")
LOCKED = "database is locked"


@dataclass
class Meter:
    """Every answer the phones saw; safe to share between threads."""

    statuses: Counter[int] = field(default_factory=Counter)
    lost: int = 0  # requests that got no answer: refused, reset, timed out
    locked: int = 0  # answers that mention "database is locked"
    server_errors: list[str] = field(default_factory=list)
    push_ms: list[float] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    agreements: set[str] = field(default_factory=set)
    rejected: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def requests(self) -> int:
        """Requests that got an answer."""
        return sum(self.statuses.values())

    def lost_one(self) -> None:
        """Count a request that got no answer."""
        with self._lock:
            self.lost += 1

    def observe(
        self, method: str, path: str, json: Any, response: TransportResponse, elapsed_s: float
    ) -> None:
        """Count one answer; for a push, note what it acknowledged."""
        with self._lock:
            self.statuses[response.status] += 1
            if LOCKED in str(response.body).lower():
                self.locked += 1
            if response.status >= 500:
                self.server_errors.append(f"{method} {path}: {response.status} {response.body}")
            if path != "/sync/push":
                return
            self.push_ms.append(elapsed_s * 1000)
            if response.status != 200:
                return
            kinds = {record["id"]: record["kind"] for record in json["records"]}
            for outcome in response.body["outcomes"]:
                record_id, status = outcome["record_id"], outcome["status"]
                if status in ACKNOWLEDGED:
                    self.acknowledged.add(record_id)
                    if kinds.get(record_id) == "agreement":
                        self.agreements.add(record_id)
                elif status == "rejected":
                    self.rejected[record_id] = f"{outcome['reason']}: {outcome['message']}"


class FaultyTransport:
    """Meters every request (when given a Meter, which may be swapped) and, while
    `enabled`, injects one fault into a share `rate` of sync and attachment requests."""

    def __init__(
        self,
        inner: Transport,
        meter: Meter | None = None,
        *,
        rng: random.Random | None = None,
        rate: float = 0.0,
    ) -> None:
        self.inner = inner
        self.meter = meter
        self.rng = rng or random.Random()
        self.rate = rate
        self.enabled = False
        self.injected: Counter[str] = Counter()
        self.auth_calls: Counter[str] = Counter()  # logins and refreshes, by path
        self.auth_headers: dict[str, str] = {}  # the client's latest token and device id
        self._pushes: list[tuple[Mapping[str, str], Any]] = []

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
        """Forward the request, perhaps with one fault."""

        def send(body: Any = json, sent: Mapping[str, str] | None = headers) -> TransportResponse:
            return self._metered(method, path, json=body, data=data, headers=sent, params=params)

        if path.startswith("/auth/"):
            self.auth_calls[path] += 1
        if headers and "Authorization" in headers:
            self.auth_headers = dict(headers)
        faulty = path.startswith(("/sync/", "/attachments/"))
        if not (self.enabled and faulty and self.rng.random() < self.rate):
            return self._remember(path, json, headers, send())
        fault = self.rng.choice(FAULTS)
        if fault == "stale_replay" and not (path == "/sync/push" and self._pushes):
            fault = "duplicate"
        self.injected[fault] += 1
        if fault == "lost_request":
            raise TransportError("simulated: request lost before the server")
        if fault == "server_error":
            body = {"error": {"code": "unavailable", "message": "simulated 503", "details": {}}}
            return TransportResponse(503, {"retry-after": "0"}, body)
        response = self._remember(path, json, headers, send())
        if fault == "lost_answer":
            raise TransportError("simulated: answer lost after the server committed")
        if fault == "duplicate":
            return send()
        # stale_replay: an earlier batch arrives again after this newer one.
        old_headers, old_body = self.rng.choice(self._pushes)
        send(old_body, old_headers)
        return response

    def _metered(self, method: str, path: str, **options: Any) -> TransportResponse:
        if self.meter is None:
            return self.inner.request(method, path, **options)
        started = time.perf_counter()
        try:
            response = self.inner.request(method, path, **options)
        except TransportError:
            self.meter.lost_one()
            raise
        elapsed = time.perf_counter() - started
        self.meter.observe(method, path, options.get("json"), response, elapsed)
        return response

    def _remember(
        self, path: str, body: Any, headers: Mapping[str, str] | None, response: TransportResponse
    ) -> TransportResponse:
        # Only a transport that injects faults replays old pushes, so only it keeps them.
        if self.rate and path == "/sync/push" and response.status == 200:
            self._pushes.append((dict(headers or {}), body))
        return response
