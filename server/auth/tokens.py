"""Access tokens (EdDSA JWTs) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from jwt import exceptions as jwt_errors

from server import memo
from server.errors import InvalidToken
from server.keys import SigningKeys

ALGORITHM = "EdDSA"  # the only algorithm decode accepts: no "none", no HS/RS confusion
# `sid` names the session (the refresh-token family): ending it refuses the token at once.
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti", "sid"]
# Small allowance for clocks of several workers; never for the token's lifetime.
LEEWAY_S = 5


# Every reason a token is refused, with the one message the client sees for it (code
# `invalid_token`, the reason in `details.reason`). Fixed text: the JWT library's own messages
# never leave the server. docs/tokens.md lists the same table (tests/api/test_tokens.py).
TOKEN_REFUSALS: dict[str, str] = {
    "malformed": "token refused: not a well-formed JWT",
    "unsupported_algorithm": "token refused: only EdDSA-signed tokens are accepted",
    "bad_signature": "token refused: the signature does not verify with this server's key",
    "wrong_audience": "token refused: issued for another audience",
    "wrong_issuer": "token refused: issued by another server",
    "missing_claim": "token refused: a required claim is missing",
    "invalid_claim": "token refused: a claim has a value of the wrong type",
    "expired": "token refused: expired",
    "not_yet_valid": "token refused: not valid yet (issued in the future)",
    "not_access_token": "token refused: not an access token",
    "invalid": "token refused: not a valid token",
    "account_changed": "token refused: account changed or disabled",
    "session_ended": "token refused: its session ended (logged out or revoked)",
    "no_device": "token refused: agent token without a device",
    "unknown_device": "token refused: unknown device",
    "refresh_refused": "refresh token refused",
}

# The decoder's failures; the most specific class wins (a bad signature is a DecodeError).
_DECODER_REFUSALS: dict[type[Exception], str] = {
    jwt_errors.InvalidSignatureError: "bad_signature",
    jwt_errors.DecodeError: "malformed",
    jwt_errors.InvalidAlgorithmError: "unsupported_algorithm",
    jwt_errors.InvalidAudienceError: "wrong_audience",
    jwt_errors.InvalidIssuerError: "wrong_issuer",
    jwt_errors.MissingRequiredClaimError: "missing_claim",
    jwt_errors.ExpiredSignatureError: "expired",
    jwt_errors.ImmatureSignatureError: "not_yet_valid",
    jwt_errors.InvalidSubjectError: "invalid_claim",
    jwt_errors.InvalidJTIError: "invalid_claim",
    jwt_errors.InvalidIssuedAtError: "invalid_claim",
}


def token_refused(reason: str) -> InvalidToken:
    """The refusal for this reason: its fixed message, and the reason in the details."""
    return InvalidToken(TOKEN_REFUSALS[reason], reason=reason)


def _decoder_refusal(exc: jwt.PyJWTError) -> InvalidToken:
    for kind in type(exc).__mro__:
        if kind in _DECODER_REFUSALS:
            return token_refused(_DECODER_REFUSALS[kind])
    return token_refused("invalid")


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    role: str
    device_id: str | None
    session_id: str
    jti: str
    expires_at: datetime


def issue_access_token(
    keys: SigningKeys,
    settings: Mapping[str, Any],
    *,
    user_id: int,
    role: str,
    device_id: str | None,
    session_id: str,
    now: datetime,
) -> tuple[str, datetime]:
    expires_at = now + timedelta(seconds=settings["ACCESS_TOKEN_TTL_S"])
    claims = {
        "iss": settings["ISSUER"],
        "aud": settings["AUDIENCE"],
        "sub": str(user_id),
        "jti": secrets.token_hex(16),
        "sid": session_id,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "typ": "access",
        "role": role,
    }
    if device_id is not None:
        claims["device_id"] = device_id
    token = jwt.encode(claims, keys.private_key, algorithm=ALGORITHM, headers={"kid": keys.key_id})
    return token, expires_at


# Tokens whose signature, algorithm, audience, issuer and required claims were verified,
# with their claims: a phone sends the same token with every request of its 15 minutes, and
# PyJWT's decode (the Ed25519 check, two base64 and a JSON read) was a tenth of a pull.
# The check is a pure function of the token and the arguments kept beside it, so its claims
# are the same whenever these are; the time checks (decode_access_token) run every time.
# Only accepted tokens are kept (a refusal is decided again), at most _VERIFIED_SIZE (a few
# hundred bytes each); the oldest goes first. Nothing outside _verified reads the claims
# kept, and decode_access_token only reads them.
_VERIFIED: dict[str, tuple[Any, str, str, dict[str, Any]]] = {}
_VERIFIED_SIZE = 4096


def _verified(public_key: Any, audience: str, issuer: str, token: str) -> dict[str, Any]:
    """jwt.decode's claims of a token this key signed for this audience and issuer (the
    time claims not checked), or the refusal of a token it does not accept."""
    known = _VERIFIED.get(token)
    if known is not None and known[0] is public_key and known[1] == audience and known[2] == issuer:
        return known[3]
    try:
        claims = jwt.decode(
            token,
            public_key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            # exp/iat/nbf are checked below against our own clock so tests can fix time.
            options={
                "require": REQUIRED_CLAIMS,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise _decoder_refusal(exc) from None
    memo.keep(_VERIFIED, token, (public_key, audience, issuer, claims), _VERIFIED_SIZE)
    return claims


def decode_access_token(
    keys: SigningKeys,
    settings: Mapping[str, Any],
    token: str,
    now: datetime,
    *,
    allow_expired: bool = False,
) -> AccessClaims:
    """Verify signature, algorithm, audience, issuer and lifetime against the injected clock."""
    claims = _verified(keys.public_key, settings["AUDIENCE"], settings["ISSUER"], token)
    stamp = now.timestamp()
    not_before = claims.get("nbf", claims["iat"])
    if not all(type(value) is int for value in (claims["exp"], claims["iat"], not_before)):
        raise token_refused("invalid_claim")  # not float, not bool, not text
    if claims["exp"] <= stamp - LEEWAY_S and not allow_expired:
        raise token_refused("expired")
    if max(claims["iat"], not_before) > stamp + LEEWAY_S:
        raise token_refused("not_yet_valid")
    if claims.get("typ") != "access" or not str(claims["sub"]).isdigit():
        raise token_refused("not_access_token")
    if not isinstance(claims["sid"], str):
        raise token_refused("invalid_claim")
    return AccessClaims(
        user_id=int(claims["sub"]),
        role=str(claims.get("role")),
        device_id=claims.get("device_id"),
        session_id=claims["sid"],
        jti=claims["jti"],
        expires_at=datetime.fromtimestamp(claims["exp"], now.tzinfo),
    )


def new_refresh_token() -> tuple[str, str]:
    """A random token for the client and the hash we keep of it."""
    token = "rt_" + secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
