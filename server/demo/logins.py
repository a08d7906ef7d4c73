"""The demo's logins file: every demo account with its password, for people and for tools.

It sits beside the SQLite file (in the state folder for PostgreSQL) as
`demo-logins.json`, readable by its owner only (0600):

    {"base_url": "http://127.0.0.1:5000/api/v1",
     "accounts": [{"username": "agent01", "password": "...", "role": "agent",
                   "device_id": "phone-agent01"}, ...]}

`device_id` is the phone the demo registered for each agent (log in with it), else null.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.storage.engine import is_postgres

FILE_NAME = "demo-logins.json"


@dataclass(frozen=True)
class DemoLogin:
    """A demo account as the demo left it: its password, when known, and what happened to it."""

    username: str
    role: str
    password: str | None  # None: kept from an earlier run and not known to this one
    change: str  # "created" | "reset" | "kept" | "unknown"

    @property
    def device_id(self) -> str | None:
        """The phone the demo registers for this agent: agents log in from a registered phone."""
        return f"phone-{self.username}" if self.role == "agent" else None


class UnreadableLogins(ValueError):
    """The logins file exists but does not hold the logins document."""


def logins_path(database: str, state_dir: str | None) -> Path:
    """Where the logins file of the demo in this database lives: beside the SQLite file; for
    a PostgreSQL store (a URL, not a file), in the store's state folder (keys.state_dir:
    DOORSTEP_STATE_DIR, else ./instance), where its development key also lives."""
    if is_postgres(database):
        return Path(state_dir or "instance").resolve() / FILE_NAME
    return Path(database).resolve().parent / FILE_NAME


def read_passwords(path: Path) -> dict[str, str]:
    """Username to password as an earlier run wrote them; empty when there is no file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return {
            str(account["username"]): account["password"]
            for account in document["accounts"]
            if isinstance(account.get("password"), str)
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnreadableLogins(f"{path}: {exc}") from None


def logins_document(base_url: str, logins: Sequence[DemoLogin]) -> dict[str, Any]:
    """The file's content: the API's address and every account whose password is known."""
    return {
        "base_url": base_url,
        "accounts": [
            {
                "username": login.username,
                "password": login.password,
                "role": login.role,
                "device_id": login.device_id,
            }
            for login in logins
            if login.password is not None
        ],
    }


def write_logins(path: Path, document: dict[str, Any]) -> None:
    """Replace the file whole (temp file, then rename), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)  # even over a stale temp file of other mode
            json.dump(document, handle, indent=2)
            handle.write("\n")
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
