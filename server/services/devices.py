"""Agents' phones: enrolment under ids the server mints, registration by an admin,
revocation and the wipe it orders (docs/security.md)."""

from __future__ import annotations

import secrets
from typing import Any

import sqlite_utils

from server.auth.tokens import decode_access_token, token_refused
from server.clock import to_iso
from server.errors import (
    Conflict,
    DeviceMismatch,
    DeviceNotAllowed,
    DeviceRevoked,
    InvalidInput,
    NotAuthenticated,
    NotFound,
)
from server.runtime import Caller, Runtime
from server.services.staff_log import log_action
from server.storage import accounts as account_rows
from server.storage.connection import transaction


def new_device_id() -> str:
    """A device id no client chose: unguessable, so no one can claim it before its phone."""
    return "dev-" + secrets.token_urlsafe(18)


def bind_device(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, user: dict, device_id: str | None
) -> str:
    """The phone this agent logs in from: one registered to it, or (auto) a new one; the
    caller holds the write transaction."""
    now = to_iso(caller.now)
    if device_id is None:
        if rt.settings["DEVICE_ENROLMENT"] != "auto":
            raise InvalidInput(
                "agents log in from a device an administrator registered", field="device_id"
            )
        device_id = new_device_id()
        account_rows.insert_device(db, device_id, user["id"], now)
        log_action(db, caller, "device_enrolled", "device", device_id, username=user["username"])
        return device_id
    device = account_rows.get_device(db, device_id)
    if device is None and rt.settings["DEVICE_ENROLMENT"] == "claim":
        # Legacy clients and load generators that choose their own ids (docs/security.md:
        # this mode lets the first claimant of an id own it, squatting included).
        account_rows.insert_device(db, device_id, user["id"], now)
        log_action(db, caller, "device_enrolled", "device", device_id, username=user["username"])
        return device_id
    if device is None or device["user_id"] != user["id"]:
        # One answer whether the id is unknown or another user's: nothing to probe.
        raise DeviceNotAllowed("this device is not registered to you", field="device_id")
    if device["status"] == "revoked":
        raise DeviceRevoked("this device was revoked: wipe local data", wipe=True)
    return device_id


def list_devices(db: sqlite_utils.Database, user_id: int) -> list[dict[str, Any]]:
    """A user's devices, oldest first, with status and last contact; NotFound for no user."""
    if account_rows.get_user(db, user_id) is None:
        raise NotFound("no such user")
    return account_rows.list_devices(db, user_id)


def register_device(
    db: sqlite_utils.Database, caller: Caller, user_id: int, device_id: str | None
) -> dict[str, Any]:
    """An admin registers a phone for an agent (its id given, or minted) before its login."""
    with transaction(db):
        user = account_rows.get_user(db, user_id)
        if user is None:
            raise NotFound("no such user")
        if user["role"] != "agent":
            raise InvalidInput("devices are registered to agents", field="user_id")
        device_id = device_id or new_device_id()
        if account_rows.get_device(db, device_id) is not None:
            raise Conflict("device id already registered", field="device_id")
        account_rows.insert_device(db, device_id, user_id, to_iso(caller.now))
        log_action(db, caller, "device_registered", "device", device_id, {"user_id": user_id})
        device = account_rows.get_device(db, device_id) or {}
        return {**device, "username": user["username"]}


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
