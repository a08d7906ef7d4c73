"""How the phone talks to the server: the transport, retries with backoff, the failures.

The transport is injected: `HttpTransport` here, a fake in tests, a fault-injecting one in
the load tests. `RetryingTransport` wraps any of them with capped exponential backoff and
jitter, bounded by attempts and by total waiting time.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import random
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


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


class RetryingTransport:
    """A transport that retries network errors, 5xx and 429 with backoff, then gives up
    with Unreachable; every other answer is returned as it came."""

    def __init__(
        self,
        inner: Transport,
        backoff: BackoffPolicy,
        sleep: Callable[[float], None],
        rng: random.Random,
    ) -> None:
        self._inner = inner
        self._backoff = backoff
        self._sleep = sleep
        self._rng = rng

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
        """One request with backoff on network errors, 5xx and 429."""
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = self._inner.request(
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


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None  # An HTTP-date Retry-After: the computed backoff is good enough.
