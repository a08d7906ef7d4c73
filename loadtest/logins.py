"""Who the load tests log in as: the demo's accounts, from its logins file or by name.

`flask demo` writes `instance/demo-logins.json`:

    {"base_url": "http://127.0.0.1:5000/api/v1",
     "accounts": [{"username": "agent01", "password": "…", "role": "agent",
                   "device_id": "phone-agent01"}, …]}

Without that file, the demo's account names are known (agent01…, dispatcher01, privacy01,
admin01) and one password shared by all of them is given instead. This module is the one
place that reads the demo data set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.demo import data as demo_data


class LoginsError(ValueError):
    """The logins file is unreadable or lacks an account the run needs."""


@dataclass(frozen=True)
class Login:
    """One account: its credentials, role, and (agents) the demo's device id."""

    username: str
    password: str
    role: str
    device_id: str | None = None


@dataclass(frozen=True)
class Logins:
    """The accounts a run may use, and where the server is (None: not said)."""

    accounts: tuple[Login, ...]
    base_url: str | None = None

    def agents(self, count: int) -> list[Login]:
        """The first `count` agents by username; LoginsError when there are fewer."""
        agents = sorted((a for a in self.accounts if a.role == "agent"), key=_username)
        if len(agents) < count:
            raise LoginsError(f"{count} agents wanted, {len(agents)} in the logins")
        return agents[:count]

    def staff(self, role: str, username: str | None = None) -> Login:
        """The account named `username`, or else the first of that role by username."""
        for login in sorted(self.accounts, key=_username):
            if (login.username == username) if username else (login.role == role):
                return login
        raise LoginsError(f"no {username or role} account in the logins")


def read_logins(path: str | Path) -> Logins:
    """The accounts of a demo-logins.json file."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        accounts = tuple(_login(item) for item in document["accounts"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise LoginsError(f"{path}: not a logins file ({error})") from error
    base_url = document.get("base_url")
    return Logins(accounts, base_url if isinstance(base_url, str) else None)


def demo_logins(password: str, agents: int) -> Logins:
    """The demo's accounts (`agents` agents and the staff), all with one password."""
    people = [{**agent, "role": "agent"} for agent in demo_agents(agents)]
    people += demo_data.demo_staff()
    return Logins(tuple(Login(p["username"], password, p["role"]) for p in people))


def demo_agents(count: int) -> list[dict[str, Any]]:
    """The demo's first `count` agents (username, badge_number, …) as `flask demo` makes them."""
    return demo_data.demo_agents(count)


def _login(item: Any) -> Login:
    device_id = item.get("device_id")
    return Login(
        username=str(item["username"]),
        password=str(item["password"]),
        role=str(item["role"]),
        device_id=str(device_id) if device_id else None,
    )


def _username(login: Login) -> str:
    return login.username
