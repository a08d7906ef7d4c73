"""Logging in, refreshing, authenticating requests, users and devices."""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from server.auth.tokens import (
    decode_access_token,
    hash_refresh_token,
    issue_access_token,
    new_refresh_token,
    token_refused,
)
from server.clock import parse_iso, to_iso
from server.errors import (
    Conflict,
    DeviceMismatch,
    DeviceNotAllowed,
    DeviceRevoked,
    InvalidCredentials,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    RateLimited,
    TokenReused,
)
from server.runtime import Caller, Principal, Runtime
from server.services.staff_log import log_action
from server.storage import accounts as account_rows
from server.storage.connection import transaction


def _check_login_rate(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, username: str
) -> None:
    window = rt.settings["LOGIN_FAILURE_WINDOW_S"]
    since = caller.now - timedelta(seconds=window)
    by_user, by_address = account_rows.login_failures_since(
        db, username=username, address=caller.address, since=to_iso(since)
    )
    for failures, limit in (
        (by_user, rt.settings["LOGIN_MAX_FAILURES_PER_USER"]),
        (by_address, rt.settings["LOGIN_MAX_FAILURES_PER_ADDRESS"]),
    ):
        if len(failures) >= limit:
            # Free again once the oldest failure that counts leaves the window.
            oldest = parse_iso(failures[len(failures) - limit])
            wait = (oldest + timedelta(seconds=window) - caller.now).total_seconds()
            raise RateLimited(
                "too many failed logins; try again later", retry_after=max(1, math.ceil(wait))
            )


def login(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    username: str,
    password: str,
    device_id: str | None,
) -> dict[str, Any]:
    """Check the password (outside any write lock), then issue a token pair."""
    _check_login_rate(db, rt, caller, username)
    user = account_rows.get_user_by_username(db, username)
    ok = rt.passwords.verify(user["password_hash"] if user else None, password)
    if not ok or not user or not user["active"]:
        with transaction(db):
            account_rows.record_login_failure(db, username, caller.address, to_iso(caller.now))
            log_action(db, caller, "login_failed", "user", username, username=username)
        raise InvalidCredentials("wrong username or password")
    if user["role"] == "agent" and not device_id:
        raise InvalidInput("agents log in from a registered device", field="device_id")
    with transaction(db):
        if user["role"] == "agent":
            _bind_device(db, rt, user, device_id or "", to_iso(caller.now))
        else:
            device_id = None
        account_rows.clear_login_failures(db, username)
        log_action(
            db, caller, "login", "user", user["id"], {"device_id": device_id}, username=username
        )
        return _issue_pair(db, rt, caller, user, device_id, family_id=secrets.token_hex(16))


def _bind_device(
    db: sqlite_utils.Database, rt: Runtime, user: dict, device_id: str, now: str
) -> None:
    device = account_rows.get_device(db, device_id)
    if device is None:
        if rt.settings["DEVICE_ENROLMENT"] != "auto":
            raise DeviceNotAllowed("this device is not registered", field="device_id")
        account_rows.insert_device(db, device_id, user["id"], now)
        return
    if device["status"] == "revoked":
        raise DeviceRevoked("this device was revoked: wipe local data", wipe=True)
    if device["user_id"] != user["id"]:
        raise DeviceNotAllowed("this device is registered to another user", field="device_id")


def _issue_pair(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    user: dict,
    device_id: str | None,
    family_id: str,
) -> dict[str, Any]:
    access, expires_at = issue_access_token(
        rt.keys,
        rt.settings,
        user_id=user["id"],
        role=user["role"],
        device_id=device_id,
        now=caller.now,
    )
    refresh, refresh_hash = new_refresh_token()
    refresh_expires = caller.now + timedelta(seconds=rt.settings["REFRESH_TOKEN_TTL_S"])
    account_rows.insert_refresh_token(
        db,
        {
            "token_hash": refresh_hash,
            "family_id": family_id,
            "user_id": user["id"],
            "device_id": device_id,
            "issued_at": to_iso(caller.now),
            "expires_at": to_iso(refresh_expires),
        },
    )
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": rt.settings["ACCESS_TOKEN_TTL_S"],
        "expires_at": expires_at,
        "refresh_token": refresh,
        "refresh_expires_at": refresh_expires,
        "device_id": device_id,
        "user": {
            "id": user["id"],
            "username": user["username"],
            "role": user["role"],
            "display_name": user["display_name"],
        },
    }


def refresh(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, refresh_token: str
) -> dict[str, Any]:
    """Rotate a refresh token; a spent one coming back revokes its whole family."""
    now = to_iso(caller.now)
    token_hash = hash_refresh_token(refresh_token)
    failure: Exception | None = None
    with transaction(db):
        stored = account_rows.get_refresh_token(db, token_hash)
        if stored is not None and stored["device_id"]:
            # Checked before the token's own state: revoking a device also revokes its
            # tokens, and the phone must still learn that it has to wipe.
            device = account_rows.get_device(db, stored["device_id"])
            if device is None or device["status"] == "revoked":
                raise DeviceRevoked("this device was revoked: wipe local data", wipe=True)
        if stored is None or stored["revoked_at"] or stored["expires_at"] <= now:
            raise token_refused("refresh_refused")
        if not account_rows.spend_refresh_token(db, token_hash, now):
            account_rows.revoke_token_family(db, stored["family_id"], now)
            log_action(
                db,
                caller,
                "refresh_token_reused",
                "user",
                stored["user_id"],
                {"family_id": stored["family_id"], "device_id": stored["device_id"]},
            )
            failure = TokenReused("refresh token already used: every session it began is revoked")
        else:
            user = account_rows.get_user(db, stored["user_id"])
            if user is None or not user["active"]:
                raise token_refused("refresh_refused")
            return _issue_pair(db, rt, caller, user, stored["device_id"], stored["family_id"])
    raise failure


def logout(db: sqlite_utils.Database, caller: Caller, refresh_token: str) -> None:
    """Revoke the refresh-token family this token belongs to; unknown tokens are a no-op."""
    with transaction(db):
        stored = account_rows.get_refresh_token(db, hash_refresh_token(refresh_token))
        if stored is not None:
            account_rows.revoke_token_family(db, stored["family_id"], to_iso(caller.now))


def authenticate(
    db: sqlite_utils.Database,
    rt: Runtime,
    authorization: str | None,
    device_header: str | None,
    now: datetime,
) -> Principal:
    """Turn an Authorization header into a principal, or refuse."""
    if not authorization:
        raise NotAuthenticated("missing Authorization: Bearer token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("expected Authorization: Bearer <token>")
    claims = decode_access_token(rt.keys, rt.settings, token.strip(), now)
    user = account_rows.get_user(db, claims.user_id)
    if user is None or not user["active"] or user["role"] != claims.role:
        raise token_refused("account_changed")
    if user["role"] == "agent":
        if not claims.device_id:
            raise token_refused("no_device")
        device = account_rows.get_device(db, claims.device_id)
        if device is None or device["user_id"] != user["id"]:
            raise token_refused("unknown_device")
        if device["status"] == "revoked":
            raise DeviceRevoked("this device was revoked: wipe local data", wipe=True)
        if device_header != claims.device_id:
            raise DeviceMismatch(
                "token is bound to another device (send X-Device-Id)", field="X-Device-Id"
            )
        _note_contact(db, device, now)
    return Principal(
        user_id=user["id"],
        username=user["username"],
        role=user["role"],
        device_id=claims.device_id,
        time_zone=user["time_zone"],
    )


# A device's last_seen_at is kept to this precision, so most requests only read it.
LAST_SEEN_PRECISION = timedelta(seconds=60)


def _note_contact(db: sqlite_utils.Database, device: dict[str, Any], now: datetime) -> None:
    """Move the device's last_seen_at to now, unless it is already within the precision."""
    seen = device["last_seen_at"]
    if seen is not None and now - parse_iso(seen) < LAST_SEEN_PRECISION:
        return
    with transaction(db):
        account_rows.touch_device(db, device["id"], to_iso(now))


def confirm_wipe(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    authorization: str | None,
    device_header: str | None,
) -> dict[str, Any]:
    """A revoked phone reports that it wiped its data. Its token may have expired while it
    was offline; the signature and the device binding are still checked."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("expected Authorization: Bearer <token>")
    claims = decode_access_token(
        rt.keys, rt.settings, token.strip(), caller.now, allow_expired=True
    )
    if not claims.device_id or device_header != claims.device_id:
        raise DeviceMismatch(
            "token is bound to another device (send X-Device-Id)", field="X-Device-Id"
        )
    with transaction(db):
        device = account_rows.get_device(db, claims.device_id)
        if device is None or device["user_id"] != claims.user_id:
            raise token_refused("unknown_device")
        if device["status"] != "revoked":
            raise Conflict("this device is not revoked; nothing to confirm", field="device_id")
        account_rows.confirm_wipe(db, claims.device_id, to_iso(caller.now))
        log_action(
            db,
            caller,
            "device_wipe_confirmed",
            "device",
            claims.device_id,
            username=str(claims.user_id),
        )
        return account_rows.get_device(db, claims.device_id) or {}


def create_user(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, data: dict[str, Any]
) -> dict[str, Any]:
    """Create a staff or agent account with a hashed password; usernames and badges are unique."""
    if data["role"] == "agent" and not data.get("badge_number"):
        raise InvalidInput("agents need a badge number", field="badge_number")
    password_hash = rt.passwords.hash(data["password"])
    with transaction(db):
        if account_rows.get_user_by_username(db, data["username"]):
            raise Conflict("username already taken", field="username")
        if data.get("badge_number") and account_rows.badge_taken(db, data["badge_number"]):
            raise Conflict("badge number already belongs to another agent", field="badge_number")
        user_id = account_rows.insert_user(
            db,
            {
                "username": data["username"],
                "password_hash": password_hash,
                "role": data["role"],
                "display_name": data.get("display_name") or data["username"],
                "created_at": to_iso(caller.now),
            },
        )
        if data["role"] == "agent":
            account_rows.upsert_agent_profile(
                db,
                {
                    "user_id": user_id,
                    "badge_number": data["badge_number"],
                    "region": data.get("region"),
                    "home_lat": data.get("home_lat"),
                    "home_lon": data.get("home_lon"),
                    "time_zone": data.get("time_zone") or rt.settings["DEFAULT_TIME_ZONE"],
                },
            )
        log_action(
            db,
            caller,
            "user_created",
            "user",
            user_id,
            {"username": data["username"], "role": data["role"]},
        )
        return account_rows.get_user(db, user_id) or {}


def get_user(db: sqlite_utils.Database, user_id: int) -> dict[str, Any]:
    """One user by id, or NotFound."""
    user = account_rows.get_user(db, user_id)
    if user is None:
        raise NotFound("no such user")
    return user


def revoke_device(
    db: sqlite_utils.Database, caller: Caller, device_id: str, reason: str | None
) -> dict[str, Any]:
    """Revoke a device (idempotent): its tokens stop working and it must wipe."""
    with transaction(db):
        device = account_rows.get_device(db, device_id)
        if device is None:
            raise NotFound("no such device")
        if device["status"] != "revoked":
            by = caller.principal.user_id if caller.principal else None
            account_rows.revoke_device(db, device_id, by, reason, to_iso(caller.now))
            log_action(db, caller, "device_revoked", "device", device_id, {"reason": reason})
        return account_rows.get_device(db, device_id) or {}


def count_refused_login(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, username: str
) -> None:
    """A login refused for its input counts as a failed attempt, as a wrong password does:
    throttled like one (RateLimited once over the limit), recorded like one."""
    _check_login_rate(db, rt, caller, username)
    with transaction(db):
        account_rows.record_login_failure(db, username, caller.address, to_iso(caller.now))
