"""Users, agents, devices, refresh tokens and login failures."""

from __future__ import annotations

from typing import Any

import sqlite_utils
from sqlite_utils.utils import dedupe_keys

Row = dict[str, Any]


def _one(db: sqlite_utils.Database, sql: str, params: list[Any]) -> Row | None:
    """The first row of a read, as a dict; None when there is none. Every request's
    authentication runs three of these (user, device, session), so they go straight to the
    cursor rather than through `db.query`, whose savepoint pair guards writes these are not."""
    cursor = db.execute(sql, params)
    row = cursor.fetchone()
    if row is None:
        return None
    names = [d[0] for d in cursor.description]
    if len(set(names)) != len(names):  # a join's repeated name, numbered as db.query does
        names = dedupe_keys(names)
    return dict(zip(names, row, strict=True))


def insert_user(db: sqlite_utils.Database, user: Row) -> int:
    cursor = db.execute(
        "INSERT INTO users (username, password_hash, role, display_name, active, created_at) "
        "VALUES (:username, :password_hash, :role, :display_name, :active, :created_at)",
        {"active": 1, **user},
    )
    return int(cursor.lastrowid)


_GRANT_COLUMNS = (
    "g.*, u.username, u.role, r.username AS requested_by_username, "
    "d.username AS decided_by_username"
)
_GRANT_FROM = (
    "FROM role_grants g JOIN users u ON u.id = g.user_id "
    "LEFT JOIN users r ON r.id = g.requested_by LEFT JOIN users d ON d.id = g.decided_by"
)


def insert_role_grant(db: sqlite_utils.Database, grant: Row) -> int:
    cursor = db.execute(
        "INSERT INTO role_grants (user_id, kind, requested_by, requested_at, reason) "
        "VALUES (:user_id, :kind, :requested_by, :requested_at, :reason)",
        grant,
    )
    return int(cursor.lastrowid)


def get_role_grant(db: sqlite_utils.Database, grant_id: int) -> Row | None:
    return _one(db, f"SELECT {_GRANT_COLUMNS} {_GRANT_FROM} WHERE g.id = ?", [grant_id])


def list_role_grants(db: sqlite_utils.Database, status: str | None = None) -> list[Row]:
    where, params = ("WHERE g.status = ?", [status]) if status else ("", [])
    return list(db.query(f"SELECT {_GRANT_COLUMNS} {_GRANT_FROM} {where} ORDER BY g.id", params))


def pending_role_grant(db: sqlite_utils.Database, user_id: int) -> Row | None:
    return _one(
        db,
        f"SELECT {_GRANT_COLUMNS} {_GRANT_FROM} WHERE g.user_id = ? AND g.status = 'pending'",
        [user_id],
    )


def has_approved_access(db: sqlite_utils.Database, user_id: int) -> bool:
    """Whether a privacy officer's access was ever granted (or it predates grants)."""
    row = db.execute(
        "SELECT COUNT(*), SUM(kind = 'privacy_officer_access' AND status = 'approved') "
        "FROM role_grants WHERE user_id = ? AND kind = 'privacy_officer_access'",
        [user_id],
    ).fetchone()
    return row[0] == 0 or bool(row[1])


def decide_role_grant(
    db: sqlite_utils.Database, grant_id: int, status: str, by_user: int, now: str, note: str | None
) -> bool:
    """Approve or reject a pending grant; False when it was no longer pending."""
    cursor = db.execute(
        "UPDATE role_grants SET status = ?, decided_by = ?, decided_at = ?, decision_note = ? "
        "WHERE id = ? AND status = 'pending'",
        [status, by_user, now, note, grant_id],
    )
    return cursor.rowcount == 1


def upsert_agent_profile(db: sqlite_utils.Database, profile: Row) -> None:
    db.execute(
        "INSERT INTO agents (user_id, badge_number, region, home_lat, home_lon, time_zone) "
        "VALUES (:user_id, :badge_number, :region, :home_lat, :home_lon, :time_zone) "
        "ON CONFLICT (user_id) DO UPDATE SET badge_number = excluded.badge_number, "
        "region = excluded.region, home_lat = excluded.home_lat, "
        "home_lon = excluded.home_lon, time_zone = excluded.time_zone",
        profile,
    )


_USER_COLUMNS = (
    "u.id, u.username, u.password_hash, u.role, u.display_name, u.active, u.created_at, "
    "u.must_change_password, u.password_expires_at, "
    "a.badge_number, a.region, a.home_lat, a.home_lon, a.time_zone"
)


def badge_taken(db: sqlite_utils.Database, badge_number: str) -> bool:
    return (
        db.execute("SELECT 1 FROM agents WHERE badge_number = ?", [badge_number]).fetchone()
        is not None
    )


def get_user_by_username(db: sqlite_utils.Database, username: str) -> Row | None:
    return _one(
        db,
        f"SELECT {_USER_COLUMNS} FROM users u LEFT JOIN agents a ON a.user_id = u.id "
        "WHERE u.username = ?",
        [username],
    )


def get_user(db: sqlite_utils.Database, user_id: int) -> Row | None:
    return _one(
        db,
        f"SELECT {_USER_COLUMNS} FROM users u LEFT JOIN agents a ON a.user_id = u.id "
        "WHERE u.id = ?",
        [user_id],
    )


def list_users(db: sqlite_utils.Database, role: str | None = None) -> list[Row]:
    sql = f"SELECT {_USER_COLUMNS} FROM users u LEFT JOIN agents a ON a.user_id = u.id"
    params: list[Any] = []
    if role:
        sql += " WHERE u.role = ?"
        params.append(role)
    return list(db.query(sql + " ORDER BY u.id", params))


def update_user(db: sqlite_utils.Database, user_id: int, changes: Row) -> None:
    allowed = {
        "password_hash",
        "display_name",
        "active",
        "must_change_password",
        "password_expires_at",
    }
    sets = [f"{column} = :{column}" for column in changes if column in allowed]
    if sets:
        db.execute(f"UPDATE users SET {', '.join(sets)} WHERE id = :id", {**changes, "id": user_id})


def get_device(db: sqlite_utils.Database, device_id: str) -> Row | None:
    return _one(db, "SELECT * FROM devices WHERE id = ?", [device_id])


def insert_device(db: sqlite_utils.Database, device_id: str, user_id: int, now: str) -> None:
    db.execute(
        "INSERT INTO devices (id, user_id, status, registered_at) VALUES (?, ?, 'active', ?)",
        [device_id, user_id, now],
    )


def list_devices(db: sqlite_utils.Database, user_id: int | None = None) -> list[Row]:
    sql = (
        "SELECT d.*, u.username FROM devices d JOIN users u ON u.id = d.user_id"
        + (" WHERE d.user_id = ?" if user_id is not None else "")
        + " ORDER BY d.registered_at"
    )
    return list(db.query(sql, [user_id] if user_id is not None else []))


def revoke_device(
    db: sqlite_utils.Database, device_id: str, by_user: int, reason: str | None, now: str
) -> None:
    db.execute(
        "UPDATE devices SET status = 'revoked', revoked_at = ?, revoked_by = ?, "
        "revoke_reason = ? WHERE id = ?",
        [now, by_user, reason, device_id],
    )
    db.execute(
        "UPDATE refresh_tokens SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL",
        [now, device_id],
    )
    db.execute(
        "UPDATE sessions SET ended_at = ?, end_reason = 'device_revoked' "
        "WHERE device_id = ? AND ended_at IS NULL",
        [now, device_id],
    )


def confirm_wipe(db: sqlite_utils.Database, device_id: str, now: str) -> None:
    db.execute(
        "UPDATE devices SET wipe_confirmed_at = COALESCE(wipe_confirmed_at, ?) WHERE id = ?",
        [now, device_id],
    )


def touch_device(db: sqlite_utils.Database, device_id: str, now: str) -> None:
    """Note contact from the device at `now`; a late writer never moves it back."""
    db.execute(
        "UPDATE devices SET last_seen_at = ? WHERE id = ? "
        "AND (last_seen_at IS NULL OR last_seen_at < ?)",
        [now, device_id, now],
    )


def insert_refresh_token(db: sqlite_utils.Database, token: Row) -> None:
    db.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, device_id, issued_at, "
        "expires_at) VALUES (:token_hash, :family_id, :user_id, :device_id, :issued_at, "
        ":expires_at)",
        token,
    )


def get_refresh_token(db: sqlite_utils.Database, token_hash: str) -> Row | None:
    return _one(db, "SELECT * FROM refresh_tokens WHERE token_hash = ?", [token_hash])


def spend_refresh_token(db: sqlite_utils.Database, token_hash: str, now: str) -> bool:
    """Mark a token used; False when someone else spent it first."""
    cursor = db.execute(
        "UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
        [now, token_hash],
    )
    return cursor.rowcount == 1


def insert_session(
    db: sqlite_utils.Database, session_id: str, user_id: int, device_id: str | None, now: str
) -> None:
    db.execute(
        "INSERT INTO sessions (id, user_id, device_id, started_at) VALUES (?, ?, ?, ?)",
        [session_id, user_id, device_id, now],
    )


def get_session(db: sqlite_utils.Database, session_id: str) -> Row | None:
    return _one(db, "SELECT * FROM sessions WHERE id = ?", [session_id])


def end_session(db: sqlite_utils.Database, session_id: str, now: str, reason: str) -> None:
    """End one session: its access tokens are refused and its refresh tokens revoked."""
    db.execute(
        "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
        [now, reason, session_id],
    )
    db.execute(
        "UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE family_id = ?",
        [now, session_id],
    )


def end_user_sessions(db: sqlite_utils.Database, user_id: int, now: str, reason: str) -> int:
    """End every open session of a user; how many were open."""
    cursor = db.execute(
        "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE user_id = ? AND ended_at IS NULL",
        [now, reason, user_id],
    )
    db.execute(
        "UPDATE refresh_tokens SET revoked_at = ? WHERE revoked_at IS NULL "
        "AND family_id IN (SELECT id FROM sessions WHERE user_id = ?)",
        [now, user_id],
    )
    return cursor.rowcount


def record_login_failure(db: sqlite_utils.Database, username: str, address: str, now: str) -> None:
    db.execute(
        "INSERT INTO login_failures (username, address, failed_at) VALUES (?, ?, ?)",
        [username, address, now],
    )


def oldest_of_latest_failures(
    db: sqlite_utils.Database,
    *,
    since: str,
    count: int,
    username: str | None = None,
    address: str | None = None,
) -> str | None:
    """The oldest of the latest `count` failures since `since` for this username or this
    address; None while there are fewer."""
    column, value = ("username", username) if username is not None else ("address", address)
    row = db.execute(
        f"SELECT failed_at FROM login_failures WHERE {column} = ? AND failed_at >= ? "
        "ORDER BY failed_at DESC LIMIT 1 OFFSET ?",
        [value, since, max(0, count - 1)],
    ).fetchone()
    return row[0] if row else None


def get_pair_failures(db: sqlite_utils.Database, username: str, address: str) -> Row | None:
    return _one(
        db,
        "SELECT failures, last_failed_at FROM login_pair_failures "
        "WHERE username = ? AND address = ?",
        [username, address],
    )


def set_pair_failures(
    db: sqlite_utils.Database, username: str, address: str, failures: int, now: str
) -> None:
    db.execute(
        "INSERT INTO login_pair_failures (username, address, failures, last_failed_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (username, address) DO UPDATE SET "
        "failures = excluded.failures, last_failed_at = excluded.last_failed_at",
        [username, address, failures, now],
    )


def clear_pair_failures(db: sqlite_utils.Database, username: str, address: str) -> None:
    db.execute(
        "DELETE FROM login_pair_failures WHERE username = ? AND address = ?", [username, address]
    )
