"""Short-lived JWT access tokens, signed with the server's secret key (HS256)."""

import uuid
from datetime import timedelta
from typing import Any

import jwt

from trw_platform.core.db import utc_now

ALGORITHM = "HS256"
API_KEY_TOKEN = "api_key"


def issue_token(
    secret: str,
    *,
    subject: str,
    token_type: str,
    ttl: timedelta,
    claims: dict[str, Any],
) -> str:
    now = utc_now()
    payload = {
        **claims,
        "sub": subject,
        "typ": token_type,
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str, *, token_type: str) -> dict[str, Any] | None:
    """Return the claims of a valid, unexpired token of the given type, else None."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "typ"]},
        )
    except jwt.InvalidTokenError:
        return None
    return claims if claims.get("typ") == token_type else None
