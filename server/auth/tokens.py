"""Access tokens (EdDSA JWTs) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from server.errors import InvalidToken
from server.keys import SigningKeys

ALGORITHM = "EdDSA"  # the only algorithm decode accepts: no "none", no HS/RS confusion
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]
# Small allowance for clocks of several workers; never for the token's lifetime.
LEEWAY_S = 5


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    role: str
    device_id: str | None
    jti: str
    expires_at: datetime


def issue_access_token(
    keys: SigningKeys,
    settings: Mapping[str, Any],
    *,
    user_id: int,
    role: str,
    device_id: str | None,
    now: datetime,
) -> tuple[str, datetime]:
    expires_at = now + timedelta(seconds=settings["ACCESS_TOKEN_TTL_S"])
    claims = {
        "iss": settings["ISSUER"],
        "aud": settings["AUDIENCE"],
        "sub": str(user_id),
        "jti": secrets.token_hex(16),
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "typ": "access",
        "role": role,
    }
    if device_id is not None:
        claims["device_id"] = device_id
    token = jwt.encode(claims, keys.private_key, algorithm=ALGORITHM, headers={"kid": keys.key_id})
    return token, expires_at


def decode_access_token(
    keys: SigningKeys,
    settings: Mapping[str, Any],
    token: str,
    now: datetime,
    *,
    allow_expired: bool = False,
) -> AccessClaims:
    """Verify signature, algorithm, audience, issuer and lifetime against the injected clock."""
    try:
        claims = jwt.decode(
            token,
            keys.public_key,
            algorithms=[ALGORITHM],
            audience=settings["AUDIENCE"],
            issuer=settings["ISSUER"],
            # exp/iat are checked below against our own clock so tests can fix time.
            options={"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"token refused: {exc}") from None
    stamp = now.timestamp()
    if not isinstance(claims["exp"], int) or not isinstance(claims["iat"], int):
        raise InvalidToken("token refused: exp and iat must be integers")
    if claims["exp"] <= stamp - LEEWAY_S and not allow_expired:
        raise InvalidToken("token refused: expired")
    if claims["iat"] > stamp + LEEWAY_S:
        raise InvalidToken("token refused: issued in the future")
    if claims.get("typ") != "access" or not str(claims["sub"]).isdigit():
        raise InvalidToken("token refused: not an access token")
    return AccessClaims(
        user_id=int(claims["sub"]),
        role=str(claims.get("role")),
        device_id=claims.get("device_id"),
        jti=claims["jti"],
        expires_at=datetime.fromtimestamp(claims["exp"], now.tzinfo),
    )


def new_refresh_token() -> tuple[str, str]:
    """A random token for the client and the hash we keep of it."""
    token = "rt_" + secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
