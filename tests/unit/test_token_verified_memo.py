"""Access tokens verified once per token (tokens._verified): the same claims and the same
refusals as verifying afresh, the lifetime still checked on every request, and a token
kept for one key, audience or issuer not accepted for another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.auth import tokens
from server.auth.tokens import decode_access_token, issue_access_token
from server.errors import InvalidToken
from server.keys import SigningKeys

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
SETTINGS = {"ISSUER": "https://doorstep.local/api/v1", "AUDIENCE": "doorstep-api",
            "ACCESS_TOKEN_TTL_S": 900}  # fmt: skip


def _keys(key_id: str = "k1") -> SigningKeys:
    private = Ed25519PrivateKey.generate()
    return SigningKeys(private, private.public_key(), key_id, generated=True)


def _token(keys: SigningKeys, settings=SETTINGS) -> str:
    token, _ = issue_access_token(
        keys, settings, user_id=7, role="agent", device_id="phone-1", session_id="s1", now=NOW
    )
    return token


def _reason(keys, settings, token, now) -> str:
    with pytest.raises(InvalidToken) as refused:
        decode_access_token(keys, settings, token, now)
    return refused.value.details["reason"]


def test_a_kept_token_gives_the_claims_a_fresh_check_gives():
    keys = _keys()
    token = _token(keys)
    tokens._VERIFIED.clear()
    fresh = decode_access_token(keys, SETTINGS, token, NOW)
    assert token in tokens._VERIFIED
    assert decode_access_token(keys, SETTINGS, token, NOW + timedelta(minutes=1)) == fresh


def test_the_lifetime_is_checked_on_every_request_of_a_kept_token():
    keys = _keys()
    token = _token(keys)
    decode_access_token(keys, SETTINGS, token, NOW)
    assert _reason(keys, SETTINGS, token, NOW + timedelta(minutes=16)) == "expired"
    assert _reason(keys, SETTINGS, token, NOW - timedelta(minutes=5)) == "not_yet_valid"


def test_a_kept_token_is_not_accepted_for_another_key_audience_or_issuer():
    keys = _keys()
    token = _token(keys)
    decode_access_token(keys, SETTINGS, token, NOW)
    assert _reason(_keys(), SETTINGS, token, NOW) == "bad_signature"
    assert _reason(keys, {**SETTINGS, "AUDIENCE": "other"}, token, NOW) == "wrong_audience"
    assert _reason(keys, {**SETTINGS, "ISSUER": "https://x"}, token, NOW) == "wrong_issuer"
    decode_access_token(keys, SETTINGS, token, NOW)  # and still accepted for its own


def test_a_refused_token_is_refused_again_and_not_kept():
    keys = _keys()
    token = _token(keys)
    head, claims, signature = token.split(".")
    forged = f"{head}.{claims}.{signature[:-4]}AAAA"
    for _ in range(2):
        assert _reason(keys, SETTINGS, forged, NOW) in ("bad_signature", "malformed")
    assert forged not in tokens._VERIFIED


def test_the_kept_tokens_are_bounded(monkeypatch):
    keys = _keys()
    monkeypatch.setattr(tokens, "_VERIFIED_SIZE", 3)
    tokens._VERIFIED.clear()
    issued = [_token(keys) for _ in range(5)]
    for token in issued:
        decode_access_token(keys, SETTINGS, token, NOW)
    assert list(tokens._VERIFIED) == issued[-3:]
