"""An office account (dispatcher, privacy officer, admin) on a good network."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sync.client import Transport, TransportResponse

MAX_PAGES = 10_000


class StaffRequestFailed(RuntimeError):
    """A staff login or read was refused: the run cannot go on."""


class StaffSession:
    """One staff account's token; logs in again when it expires."""

    def __init__(self, transport: Transport, username: str, password: str) -> None:
        self.transport = transport
        self.username = username
        self._password = password
        self.headers = self._login()

    def _login(self) -> dict[str, str]:
        body = {"username": self.username, "password": self._password}
        login = self.transport.request("POST", "/auth/login", json=body)
        if login.status != 200:
            raise StaffRequestFailed(f"{self.username} cannot log in: {login.status} {login.body}")
        return {"Authorization": f"Bearer {login.body['access_token']}"}

    def call(self, method: str, path: str, **options: Any) -> TransportResponse:
        """One request with the staff token."""
        extra = options.pop("headers", {})
        response = self.transport.request(
            method, path, headers={**self.headers, **extra}, **options
        )
        if response.status == 401:
            self.headers = self._login()
            response = self.transport.request(
                method, path, headers={**self.headers, **extra}, **options
            )
        return response

    def read(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a resource that must answer 200; its body."""
        response = self.call("GET", path, params=params)
        if response.status != 200:
            raise StaffRequestFailed(f"GET {path}: {response.status} {response.body}")
        return response.body

    def pages(self, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every item of a paginated list (`items` and `next_after`)."""
        items: list[dict[str, Any]] = []
        after = 0
        for _ in range(MAX_PAGES):
            body = self.read(path, {**params, "after": after, "limit": 500})
            items += body["items"]
            after = body.get("next_after")
            if not after:
                return items
        raise StaffRequestFailed(f"GET {path}: more than {MAX_PAGES} pages")
