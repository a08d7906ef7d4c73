"""Logging in, refreshing and authenticating requests; passwords, sessions, user accounts."""

from __future__ import annotations

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
from server.domain.login_throttle import PairFailures, current_streak, login_wait
from server.domain.roles import PRIVACY_OFFICER
from server.errors import (
    Conflict,
    DeviceMismatch,
    DeviceRevoked,
    InvalidCredentials,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PasswordChangeRequired,
    RateLimited,
    TokenReused,
)
from server.runtime import Caller, Principal, Runtime
from server.services import devices, role_grants
from server.services.staff_log import log_action
from server.storage import accounts as account_rows
from server.storage.connection import transaction


def _pair_failures(db: sqlite_utils.Database, username: str, address: str) -> PairFailures:
    row = account_rows.get_pair_failures(db, username, address)
    if row is None:
        return PairFailures()
    return PairFailures(row["failures"], parse_iso(row["last_failed_at"]))


def _check_login_rate(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, username: str
) -> None:
    """Refuse (429) an attempt its (username, address) pair must not make yet."""
    policy = rt.login_throttle
    pair = _pair_failures(db, username, caller.address)
    if current_streak(policy, pair, caller.now) == 0:
        return  # never held back by failures elsewhere: skip the cap queries too
    since = to_iso(caller.now - policy.window)
    by_user = account_rows.oldest_of_latest_failures(
        db, username=username, since=since, count=policy.max_per_user
    )
    by_address = account_rows.oldest_of_latest_failures(
        db, address=caller.address, since=since, count=policy.max_per_address
    )
    wait = login_wait(
        policy,
        pair,
        parse_iso(by_user) if by_user else None,
        parse_iso(by_address) if by_address else None,
        caller.now,
    )
    if wait is not None:
        raise RateLimited("too many failed logins; try again later", retry_after=wait)


def _record_login_failure(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, username: str
) -> None:
    now = to_iso(caller.now)
    streak = current_streak(
        rt.login_throttle, _pair_failures(db, username, caller.address), caller.now
    )
    account_rows.set_pair_failures(db, username, caller.address, streak + 1, now)
    account_rows.record_login_failure(db, username, caller.address, now)


def login(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    username: str,
    password: str,
    device_id: str | None,
) -> dict[str, Any]:
    """Check the password (outside any write lock), then issue a token pair."""
    user = _check_password(db, rt, caller, username, password)
    if user["must_change_password"]:
        with transaction(db):
            account_rows.clear_pair_failures(db, username, caller.address)
        raise PasswordChangeRequired(
            "this password was handed to you: set your own at POST /auth/password",
            field="password",
        )
    with transaction(db):
        if user["role"] == "agent":
            device_id = devices.bind_device(db, rt, caller, user, device_id)
        else:
            device_id = None
        account_rows.clear_pair_failures(db, username, caller.address)
        session_id = secrets.token_hex(16)
        account_rows.insert_session(db, session_id, user["id"], device_id, to_iso(caller.now))
        log_action(
            db,
            caller,
            "login",
            "user",
            user["id"],
            {"device_id": device_id, "session_id": session_id},
            username=username,
        )
        return _issue_pair(db, rt, caller, user, device_id, family_id=session_id)


def _check_password(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, username: str, password: str
) -> dict[str, Any]:
    """The active account these credentials prove, or a counted failure (throttled first)."""
    _check_login_rate(db, rt, caller, username)
    user = account_rows.get_user_by_username(db, username)
    ok = rt.passwords.verify(user["password_hash"] if user else None, password)
    expired = bool(user and user["password_expires_at"]) and (
        parse_iso(user["password_expires_at"]) <= caller.now
    )
    if not ok or not user or not user["active"] or expired:
        with transaction(db):
            _record_login_failure(db, rt, caller, username)
            log_action(db, caller, "login_failed", "user", username, username=username)
        raise InvalidCredentials("wrong username or password")
    return user


def verify_credentials(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, username: str, password: str
) -> dict[str, Any]:
    """The active account these credentials prove, throttled and counted exactly as a login
    (the web console signs in through this)."""
    return _check_password(db, rt, caller, username, password)


def change_password(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    username: str,
    password: str,
    new_password: str,
) -> None:
    """Replace a password (a handed-over one must be); every session of the account ends."""
    user = _check_password(db, rt, caller, username, password)
    if new_password == password:
        raise InvalidInput("choose a new password, not the one you have", field="new_password")
    new_hash = rt.passwords.hash(new_password)
    with transaction(db):
        account_rows.update_user(
            db,
            user["id"],
            {"password_hash": new_hash, "must_change_password": 0, "password_expires_at": None},
        )
        account_rows.end_user_sessions(db, user["id"], to_iso(caller.now), "password_changed")
        account_rows.clear_pair_failures(db, username, caller.address)
        log_action(db, caller, "password_changed", "user", user["id"], username=username)


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
        session_id=family_id,
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
            account_rows.end_session(db, stored["family_id"], now, "refresh_token_reused")
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
    """End the session this refresh token belongs to; unknown tokens are a no-op."""
    with transaction(db):
        stored = account_rows.get_refresh_token(db, hash_refresh_token(refresh_token))
        if stored is not None:
            account_rows.end_session(db, stored["family_id"], to_iso(caller.now), "logout")


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
    device = None
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
    # After the device checks: a revoked phone must still be told to wipe.
    session = account_rows.get_session(db, claims.session_id)
    if session is None or session["ended_at"] or session["user_id"] != user["id"]:
        raise token_refused("session_ended")
    if device is not None:
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


def create_user(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, data: dict[str, Any]
) -> dict[str, Any]:
    """Create a staff or agent account with a hashed password; usernames and badges are unique."""
    if data["role"] == "agent" and not data.get("badge_number"):
        raise InvalidInput("agents need a badge number", field="badge_number")
    # Through the API an admin only requests a privacy officer: a privacy officer grants the
    # access (role_grants). The console (no principal) is the operator's own bootstrap.
    needs_grant = data["role"] == PRIVACY_OFFICER and caller.principal is not None
    if needs_grant and data.get("password"):
        raise InvalidInput(
            "a privacy officer's first password comes with the approval of their access: "
            "leave it out",
            field="password",
        )
    if not needs_grant and not data.get("password"):
        raise InvalidInput("a password is required", field="password")
    # A privacy officer waiting for approval gets a password nobody knows.
    password_hash = rt.passwords.hash(data.get("password") or secrets.token_urlsafe(32))
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
                "active": 0 if needs_grant else 1,
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
        if needs_grant:
            role_grants.request_grant(db, caller, user_id, role_grants.ACCESS, None)
        return account_rows.get_user(db, user_id) or {}


def get_user(db: sqlite_utils.Database, user_id: int) -> dict[str, Any]:
    """One user by id, or NotFound."""
    user = account_rows.get_user(db, user_id)
    if user is None:
        raise NotFound("no such user")
    return user


_AGENT_FIELDS = ("badge_number", "region", "home_lat", "home_lon", "time_zone")


def update_user(
    db: sqlite_utils.Database, caller: Caller, user_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Edit an account's name and, for agents, badge, region, home base and time zone."""
    with transaction(db):
        user = get_user(db, user_id)
        profile_changes = {k: v for k, v in changes.items() if k in _AGENT_FIELDS}
        if profile_changes and user["role"] != "agent":
            raise InvalidInput("only agents have this field", field=next(iter(profile_changes)))
        badge = changes.get("badge_number")
        if badge and badge != user["badge_number"] and account_rows.badge_taken(db, badge):
            raise Conflict("badge number already belongs to another agent", field="badge_number")
        if profile_changes:
            profile = {**{k: user[k] for k in _AGENT_FIELDS}, **profile_changes}
            if (profile["home_lat"] is None) != (profile["home_lon"] is None):
                raise InvalidInput("a home base needs both home_lat and home_lon", field="home_lat")
            account_rows.upsert_agent_profile(db, {"user_id": user_id, **profile})
        if "display_name" in changes:
            account_rows.update_user(db, user_id, {"display_name": changes["display_name"]})
        if changes:
            log_action(db, caller, "user_updated", "user", user_id, {"fields": sorted(changes)})
        return get_user(db, user_id)


def reset_password(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, user_id: int, reason: str | None
) -> dict[str, Any]:
    """Give an account a temporary password it must replace at its next login (answered once,
    to the admin); a privacy officer's reset instead awaits another privacy officer."""
    if caller.principal and caller.principal.user_id == user_id:
        raise Conflict("change your own password at POST /auth/password", field="user_id")
    temporary = secrets.token_urlsafe(12)
    temporary_hash = rt.passwords.hash(temporary)  # before the write lock
    expires_at = caller.now + timedelta(seconds=rt.settings["TEMPORARY_PASSWORD_TTL_S"])
    with transaction(db):
        user = get_user(db, user_id)
        if user["role"] == PRIVACY_OFFICER:
            grant = role_grants.request_grant(db, caller, user_id, role_grants.RESET, reason)
            return {"user_id": user_id, "temporary_password": None, "grant": grant}
        account_rows.update_user(
            db,
            user_id,
            {
                "password_hash": temporary_hash,
                "must_change_password": 1,
                "password_expires_at": to_iso(expires_at),
            },
        )
        ended = account_rows.end_user_sessions(db, user_id, to_iso(caller.now), "password_reset")
        details = {"reason": reason, "sessions_ended": ended}
        log_action(db, caller, "password_reset", "user", user_id, details)
        return {
            "user_id": user_id,
            "temporary_password": temporary,
            "expires_at": expires_at,
            "grant": None,
        }


def set_user_active(
    db: sqlite_utils.Database, caller: Caller, user_id: int, active: bool, reason: str | None
) -> dict[str, Any]:
    """Disable (every session ends at once) or enable an account; idempotent."""
    if not active and caller.principal and caller.principal.user_id == user_id:
        raise Conflict("you cannot disable your own account", field="user_id")
    with transaction(db):
        user = get_user(db, user_id)
        awaiting = user["role"] == PRIVACY_OFFICER and not account_rows.has_approved_access(
            db, user_id
        )
        if active and awaiting:
            raise Conflict(
                "this privacy officer's access was not granted by a privacy officer",
                field="user_id",
            )
        if bool(user["active"]) != active:
            account_rows.update_user(db, user_id, {"active": int(active)})
            details: dict[str, Any] = {"reason": reason}
            if not active:
                now = to_iso(caller.now)
                details["sessions_ended"] = account_rows.end_user_sessions(
                    db, user_id, now, "user_disabled"
                )
            action = "user_enabled" if active else "user_disabled"
            log_action(db, caller, action, "user", user_id, details)
        return get_user(db, user_id)


def count_refused_login(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, username: str
) -> None:
    """A login refused for its input counts as a failed attempt, as a wrong password does:
    throttled like one (RateLimited once over the limit), recorded like one."""
    _check_login_rate(db, rt, caller, username)
    with transaction(db):
        _record_login_failure(db, rt, caller, username)
