"""The agent's tokens on this device: login, refresh, and authenticated requests.

A phone without a device id enrols at its first login: the server mints the id, and the
session keeps it (in the store) for every later login and request.

An expired access token is refreshed (or the agent logs in again) and the request retried
once, so records never depend on a token's lifetime. `device_revoked`, from any answer,
wipes the local store: cards, blobs, outbox and tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .bodies import iso
from .store import LocalStore
from .transport import AuthFailed, DeviceRevoked, Transport, TransportResponse


class Session:
    """Signs requests with the device's tokens and renews them; `transport` retries."""

    def __init__(
        self,
        transport: Transport,
        store: LocalStore,
        username: str,
        password: str,
        device_id: str | None,
        clock: Callable[[], datetime],
    ) -> None:
        self._transport = transport
        self._store = store
        self.username = username
        self._password = password
        # None until the first login enrols this phone and the server answers its id.
        self.device_id = device_id or store.meta("device_id")
        self._clock = clock

    def check_not_wiped(self) -> None:
        """Raise DeviceRevoked if this device was wiped: it must not record or sync again."""
        if self._store.meta("wiped_at") is not None:
            raise DeviceRevoked("this device was revoked and wiped")

    def has_tokens(self) -> bool:
        """True once a login has stored a token pair."""
        return self._store.meta("access_token") is not None

    def login(self) -> None:
        """Exchange the password and device id (none: enrol this phone) for a token pair."""
        self.check_not_wiped()
        body = {"username": self.username, "password": self._password}
        if self.device_id:
            body["device_id"] = self.device_id
        response = self._transport.request("POST", "/auth/login", json=body)
        if response.status == 401 and response.error_code == "device_revoked":
            raise self._wiped(response)
        if response.status != 200:
            raise AuthFailed(f"{response.status} {response.error_code}: {response.error_message}")
        self._save_tokens(response.body)

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
        """An authenticated request; renews the token once on 401, wipes on revocation."""
        if self.device_id is None:
            self.login()  # enrol first: every request names the phone
        for renewed in (False, True):
            sent = {
                **(headers or {}),
                "Authorization": f"Bearer {self._store.meta('access_token') or ''}",
                "X-Device-Id": self.device_id or "",
            }
            response = self._transport.request(
                method, path, json=json, data=data, headers=sent, params=params
            )
            if response.status != 401:
                return response
            if response.error_code == "device_revoked":
                raise self._wiped(response)
            if renewed:
                raise AuthFailed(f"401 {response.error_code}: {response.error_message}")
            self._renew_tokens()
        raise AssertionError("unreachable")  # pragma: no cover

    def _renew_tokens(self) -> None:
        """Rotate the refresh token; if that fails for any reason but revocation, log in."""
        refresh_token = self._store.meta("refresh_token")
        if refresh_token:
            response = self._transport.request(
                "POST", "/auth/refresh", json={"refresh_token": refresh_token}
            )
            if response.status == 200:
                self._save_tokens(response.body)
                return
            if response.status == 401 and response.error_code == "device_revoked":
                raise self._wiped(response)
        # Spent, expired or lost (a dropped refresh response spends it): the password remains.
        self.login()

    def _save_tokens(self, body: Mapping[str, Any]) -> None:
        self.device_id = body.get("device_id") or self.device_id
        with self._store.transaction():
            self._store.set_meta("access_token", body["access_token"])
            self._store.set_meta("refresh_token", body["refresh_token"])
            if self.device_id:
                self._store.set_meta("device_id", self.device_id)

    def _wiped(self, response: TransportResponse) -> DeviceRevoked:
        """Forget everything: the device is no longer trusted with borrower data."""
        self._store.wipe(iso(self._clock()))
        return DeviceRevoked(response.error_message)
