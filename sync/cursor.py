"""Opaque pull cursors: URL-safe, bound to one device, and HMAC-protected against forgery.

A cursor is `{payload}.{mac}`: the payload is base64url (no padding) of compact JSON
`{"d": device_id, "f": pull_seq, "o": outcome_seq, "v": version}`, the mac is the first
16 bytes of HMAC-SHA256(key, "doorstep-cursor\\n" + payload), base64url. The server alone
holds the key, so a client can neither invent a position nor use another device's cursor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

CURSOR_VERSION = 1
MIN_KEY_BYTES = 16
# Generous for any real state; refusing longer text early keeps garbage cheap to reject.
MAX_CURSOR_CHARS = 512
_MAC_BYTES = 16
_DOMAIN = b"doorstep-cursor\n"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class InvalidCursor(ValueError):
    """The cursor is garbage, forged, from another device, or of an unknown version."""

    code = "invalid_cursor"

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid cursor: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class CursorState:
    """Where a device stands: the last pull it received whole, and the outcomes it has seen."""

    device_id: str
    pull_seq: int
    outcome_seq: int = 0
    version: int = CURSOR_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.device_id, str) or not self.device_id:
            raise ValueError("device_id must be non-empty text")
        for name in ("pull_seq", "outcome_seq", "version"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0")


def encode_cursor(state: CursorState, *, key: bytes) -> str:
    """The opaque, URL-safe text of a cursor state."""
    _check_key(key)
    document = {
        "d": state.device_id,
        "f": state.pull_seq,
        "o": state.outcome_seq,
        "v": state.version,
    }
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    payload = _b64encode(raw.encode("utf-8"))
    return f"{payload}.{_b64encode(_mac(key, payload))}"


def decode_cursor(token: str, *, key: bytes, device_id: str) -> CursorState:
    """The state inside a cursor issued to `device_id`; raises InvalidCursor otherwise."""
    _check_key(key)
    if not isinstance(token, str) or not token or len(token) > MAX_CURSOR_CHARS:
        raise InvalidCursor("not a cursor")
    payload, dot, mac_text = token.partition(".")
    if not dot or not _BASE64URL.fullmatch(payload) or not _BASE64URL.fullmatch(mac_text):
        raise InvalidCursor("not a cursor")
    mac = _b64decode(mac_text)
    # Compare before parsing: nothing a client wrote is interpreted until it is proven ours.
    if mac is None or not hmac.compare_digest(mac, _mac(key, payload)):
        raise InvalidCursor("signature does not match")
    state = _parse_payload(payload)
    if state.version != CURSOR_VERSION:
        raise InvalidCursor(f"version {state.version} is not supported")
    if state.device_id != device_id:
        raise InvalidCursor("issued to another device")
    return state


def _parse_payload(payload: str) -> CursorState:
    raw = _b64decode(payload)
    try:
        document = json.loads(raw.decode("utf-8")) if raw is not None else None
    except (UnicodeDecodeError, ValueError):
        document = None
    if not isinstance(document, dict) or set(document) != {"d", "f", "o", "v"}:
        raise InvalidCursor("unreadable payload")
    try:
        return CursorState(
            device_id=document["d"],
            pull_seq=document["f"],
            outcome_seq=document["o"],
            version=document["v"],
        )
    except ValueError:
        raise InvalidCursor("unreadable payload") from None


def _mac(key: bytes, payload: str) -> bytes:
    digest = hmac.new(key, _DOMAIN + payload.encode("ascii"), hashlib.sha256).digest()
    return digest[:_MAC_BYTES]


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the cursor key must be at least {MIN_KEY_BYTES} bytes")


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    # Only the canonical spelling, so one state has exactly one cursor text.
    return raw if _b64encode(raw) == text else None
