"""Pull cursors: round trip, and refusal of garbage, forgery and other devices' cursors."""

import base64
import json
import re

import pytest

from sync.cursor import CursorState, InvalidCursor, decode_cursor, encode_cursor

KEY = b"k" * 32
DEVICE = "dev-7f3a"


def test_round_trip_is_url_safe_and_deterministic():
    state = CursorState(device_id=DEVICE, pull_seq=1234, outcome_seq=56)
    token = encode_cursor(state, key=KEY)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert encode_cursor(state, key=KEY) == token
    assert decode_cursor(token, key=KEY, device_id=DEVICE) == state


@pytest.mark.parametrize(
    "state",
    [
        CursorState(device_id=DEVICE, pull_seq=0),
        CursorState(device_id="设备-1.2", pull_seq=2**53, outcome_seq=7),
    ],
)
def test_round_trip_across_values(state):
    token = encode_cursor(state, key=KEY)
    assert decode_cursor(token, key=KEY, device_id=state.device_id) == state


def _forge(document, key=KEY):
    """A cursor whose payload was rewritten by a client, keeping the original mac."""
    genuine = encode_cursor(CursorState(device_id=DEVICE, pull_seq=5), key=key)
    raw = json.dumps(document, separators=(",", ":")).encode()
    payload = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return f"{payload}.{genuine.split('.')[1]}"


def _tampered_tokens():
    token = encode_cursor(CursorState(device_id=DEVICE, pull_seq=5), key=KEY)
    for index in range(len(token)):
        if token[index] == ".":
            continue
        replacement = "A" if token[index] != "A" else "B"
        yield token[:index] + replacement + token[index + 1 :]


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b.c",
        ".",
        "abc.",
        ".abc",
        "%%%.$$$",
        "x" * 600,
        _forge({"d": DEVICE, "f": 999, "o": 0, "v": 1}),
        encode_cursor(CursorState(device_id=DEVICE, pull_seq=5), key=b"q" * 32),
        *_tampered_tokens(),
    ],
)
def test_garbage_and_tampering_are_refused(token):
    with pytest.raises(InvalidCursor) as raised:
        decode_cursor(token, key=KEY, device_id=DEVICE)
    assert raised.value.code == "invalid_cursor"


def test_cursor_of_another_device_is_refused():
    token = encode_cursor(CursorState(device_id="dev-other", pull_seq=5), key=KEY)
    with pytest.raises(InvalidCursor, match="another device"):
        decode_cursor(token, key=KEY, device_id=DEVICE)


def test_unknown_version_is_refused():
    token = encode_cursor(CursorState(device_id=DEVICE, pull_seq=5, version=2), key=KEY)
    with pytest.raises(InvalidCursor, match="version"):
        decode_cursor(token, key=KEY, device_id=DEVICE)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"device_id": "", "pull_seq": 1},
        {"device_id": DEVICE, "pull_seq": -1},
        {"device_id": DEVICE, "pull_seq": True},
        {"device_id": DEVICE, "pull_seq": 1, "outcome_seq": "2"},
    ],
)
def test_state_refuses_impossible_positions(kwargs):
    with pytest.raises(ValueError):
        CursorState(**kwargs)


def test_short_key_is_refused():
    with pytest.raises(ValueError):
        encode_cursor(CursorState(device_id=DEVICE, pull_seq=1), key=b"short")
