"""Writing staff actions to the audit log."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from server.clock import to_iso
from server.runtime import Caller
from server.storage import audit as audit_rows


def log_action(
    db: sqlite_utils.Database,
    caller: Caller,
    action: str,
    target_type: str | None = None,
    target_id: Any = None,
    details: dict[str, Any] | None = None,
    *,
    username: str | None = None,
) -> None:
    """Append one staff action; the caller holds the write transaction."""
    principal = caller.principal
    audit_rows.append_staff_action(
        db,
        {
            "occurred_at": to_iso(caller.now),
            "user_id": principal.user_id if principal else None,
            "username": principal.username if principal else username,
            "role": principal.role if principal else None,
            "action": action,
            "target_type": target_type,
            "target_id": None if target_id is None else str(target_id),
            "details": details or {},
            "request_id": caller.request_id,
            "address": caller.address,
        },
    )
