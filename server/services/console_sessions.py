"""Signing in to the web console: the same accounts, passwords and login throttling as the
API (accounts._check_password), a session row like a token's, agents refused, idle timeout."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from server.clock import parse_iso, to_iso
from server.domain.roles import AGENT, ROLES
from server.errors import Forbidden, NotAuthenticated, PasswordChangeRequired
from server.runtime import Caller, Principal, Runtime
from server.services import accounts
from server.services.staff_log import log_action
from server.storage import accounts as account_rows
from server.storage.connection import transaction

# Roles that may use the console: everyone with a laptop. Agents work on their phones, where
# cards are time-bound and purged; a browser holds nothing the server can order purged.
CONSOLE_ROLES = tuple(role for role in ROLES if role != AGENT)


def sign_in(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, username: str, password: str
) -> dict[str, Any]:
    """Check the password as the API login does (throttled, failures counted), refuse agents
    and handed-over passwords, and open a console session; returns its id and the user."""
    user = accounts.verify_credentials(db, rt, caller, username, password)
    refusal: Forbidden | None = None
    if user["role"] not in CONSOLE_ROLES:
        refusal = Forbidden("agents use the phone app, not the console")
    elif user["must_change_password"]:
        refusal = PasswordChangeRequired(
            "this password was handed to you: set your own first", field="password"
        )
    with transaction(db):
        account_rows.clear_pair_failures(db, username, caller.address)
        if refusal is not None:
            details = {"role": user["role"], "reason": refusal.code}
            log_action(
                db, caller, "console_refused", "user", user["id"], details, username=username
            )
    if refusal is not None:
        raise refusal
    with transaction(db):
        session_id = secrets.token_hex(16)
        account_rows.insert_session(db, session_id, user["id"], None, to_iso(caller.now))
        log_action(
            db,
            caller,
            "console_login",
            "user",
            user["id"],
            {"session_id": session_id},
            username=username,
        )
    return {"session_id": session_id, "user_id": user["id"], "role": user["role"]}


def count_refused(db: sqlite_utils.Database, rt: Runtime, caller: Caller, username: str) -> None:
    """A sign-in form that could not be read counts as a failed attempt, as in the API."""
    accounts.count_refused_login(db, rt, caller, username)


def is_idle(last_seen: str | None, now: datetime, idle_timeout_s: int) -> bool:
    """Whether a console session quiet since `last_seen` has timed out."""
    if not last_seen:
        return True
    try:
        seen = parse_iso(last_seen)
    except ValueError:
        return True
    return now - seen >= timedelta(seconds=idle_timeout_s)


def principal(db: sqlite_utils.Database, session_id: str | None) -> Principal:
    """The signed-in staff member of a console session, or NotAuthenticated: an ended session
    (sign-out, idle, password reset, disabled account) or a role changed since."""
    if not session_id:
        raise NotAuthenticated("sign in")
    session = account_rows.get_session(db, session_id)
    if session is None or session["ended_at"] or session["device_id"] is not None:
        raise NotAuthenticated("your session ended: sign in again")
    user = account_rows.get_user(db, session["user_id"])
    if user is None or not user["active"] or user["role"] not in CONSOLE_ROLES:
        raise NotAuthenticated("your session ended: sign in again")
    return Principal(
        user_id=user["id"],
        username=user["username"],
        role=user["role"],
        device_id=None,
        time_zone=user["time_zone"],
    )


def sign_out(db: sqlite_utils.Database, caller: Caller, session_id: str, reason: str) -> None:
    """End a console session (`logout` or `idle_timeout`); ending an ended one is a no-op."""
    with transaction(db):
        session = account_rows.get_session(db, session_id)
        if session is None or session["ended_at"]:
            return
        account_rows.end_session(db, session_id, to_iso(caller.now), reason)
        log_action(db, caller, "console_logout", "user", session["user_id"], {"reason": reason})
