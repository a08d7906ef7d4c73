"""Separation of duties: privacy-officer access is requested by an admin and granted by an
existing privacy officer (docs/security.md).

An admin cannot become an auditor by creating one: the new account stays disabled, holds no
password the admin knows, and only a privacy officer's approval activates it, with a one-time
code the approver hands to the new officer, who must replace it at the first login. Another
admin does not count as the second person, since an admin can create admins at will.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import sqlite_utils

from server.clock import to_iso
from server.errors import Conflict, Forbidden, NotFound
from server.runtime import Caller, Runtime
from server.services.staff_log import log_action
from server.storage import accounts as account_rows
from server.storage.connection import transaction

ACCESS = "privacy_officer_access"
RESET = "privacy_officer_reset"


def request_grant(
    db: sqlite_utils.Database, caller: Caller, user_id: int, kind: str, reason: str | None
) -> dict[str, Any]:
    """Open a pending grant for this account; the caller holds the write transaction."""
    if account_rows.pending_role_grant(db, user_id) is not None:
        raise Conflict("a request for this account already awaits a decision", field="user_id")
    grant_id = account_rows.insert_role_grant(
        db,
        {
            "user_id": user_id,
            "kind": kind,
            "requested_by": caller.principal.user_id if caller.principal else None,
            "requested_at": to_iso(caller.now),
            "reason": reason,
        },
    )
    details = {"grant": grant_id, "kind": kind, "reason": reason}
    log_action(db, caller, "role_grant_requested", "user", user_id, details)
    return account_rows.get_role_grant(db, grant_id) or {}


def list_grants(db: sqlite_utils.Database, status: str | None) -> list[dict[str, Any]]:
    """Grants, oldest first, optionally of one status."""
    return account_rows.list_role_grants(db, status)


def approve_grant(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, grant_id: int, note: str | None
) -> dict[str, Any]:
    """A privacy officer grants the request: the account gets a one-time code, answered once."""
    code = secrets.token_urlsafe(12)
    code_hash = rt.passwords.hash(code)  # before the write lock: hashing is slow on purpose
    expires_at = caller.now + timedelta(seconds=rt.settings["TEMPORARY_PASSWORD_TTL_S"])
    with transaction(db):
        grant = _pending(db, caller, grant_id)
        now = to_iso(caller.now)
        changes: dict[str, Any] = {
            "password_hash": code_hash,
            "must_change_password": 1,
            "password_expires_at": to_iso(expires_at),
        }
        if grant["kind"] == ACCESS:
            changes["active"] = 1  # a reset leaves a disabled officer disabled
        account_rows.update_user(db, grant["user_id"], changes)
        # Whoever held the old credentials (a reset) loses every session with them.
        account_rows.end_user_sessions(db, grant["user_id"], now, "credentials_reset")
        _decide(db, caller, grant, "approved", note)
        decided = account_rows.get_role_grant(db, grant_id) or {}
        return {**decided, "one_time_code": code, "code_expires_at": expires_at}


def reject_grant(
    db: sqlite_utils.Database, caller: Caller, grant_id: int, note: str | None
) -> dict[str, Any]:
    """Turn a request down; an account waiting for access stays disabled."""
    with transaction(db):
        grant = account_rows.get_role_grant(db, grant_id)
        if grant is None:
            raise NotFound("no such grant")
        if grant["status"] != "pending":
            raise Conflict(f"this request was already {grant['status']}", field="grant_id")
        _decide(db, caller, grant, "rejected", note)
        return account_rows.get_role_grant(db, grant_id) or {}


def _pending(db: sqlite_utils.Database, caller: Caller, grant_id: int) -> dict[str, Any]:
    grant = account_rows.get_role_grant(db, grant_id)
    if grant is None:
        raise NotFound("no such grant")
    if grant["status"] != "pending":
        raise Conflict(f"this request was already {grant['status']}", field="grant_id")
    me = caller.principal.user_id if caller.principal else None
    if me in (grant["user_id"], grant["requested_by"]):
        raise Forbidden("a second person must decide: not the requester, not the account")
    return grant


def _decide(
    db: sqlite_utils.Database, caller: Caller, grant: dict, status: str, note: str | None
) -> None:
    by = caller.principal.user_id if caller.principal else None
    if not account_rows.decide_role_grant(db, grant["id"], status, by, to_iso(caller.now), note):
        raise Conflict("this request was decided meanwhile", field="grant_id")
    action = "role_grant_approved" if status == "approved" else "role_grant_rejected"
    details = {"grant": grant["id"], "kind": grant["kind"], "note": note}
    log_action(db, caller, action, "user", grant["user_id"], details)
