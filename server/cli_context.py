"""What every `flask` command shares: the app's runtime, a database, a caller, failures."""

from __future__ import annotations

import uuid
from datetime import datetime

import click
import sqlite_utils
from flask import current_app

from server.errors import DoorstepError
from server.runtime import Caller, Runtime
from server.storage.connection import open_db


def runtime(*, key_checked: bool = True) -> Runtime:
    """The runtime of the app the command runs in (needs an app context).

    Refuses while the signing key is not in the ledger keyring, except for the commands
    that record a key change (key_checked=False).
    """
    problem = current_app.extensions.get("doorstep_key_problem")
    if key_checked and problem:
        raise click.ClickException(f"signing_key_unknown: {problem}")
    return current_app.extensions["doorstep"]


def database_path() -> str:
    """The configured SQLite file."""
    return current_app.config["DATABASE"]


def open_database() -> sqlite_utils.Database:
    """A connection to the configured database, with Doorstep's connection settings."""
    return open_db(database_path())


def cli_caller(command: str, now: datetime | None = None) -> Caller:
    """The caller a command acts as: nobody signed in, from the local machine."""
    return Caller(
        principal=None,
        request_id=f"cli-{uuid.uuid4().hex[:12]}",
        endpoint=f"cli {command}",
        address="local",
        now=now or runtime().clock(),
    )


def fail(exc: DoorstepError) -> click.ClickException:
    """A domain failure as the one-line error click prints before exiting 1."""
    return click.ClickException(f"{exc.code}: {exc.message}")
