"""Who the shopper is: short-lived login tokens signed by the shop's login, verified here.

A token is a JWT (HS256, PyJWT) with the customer id as ``sub``, an audience naming the
webchat, and a lifetime of minutes. The chat never establishes identity from what a shopper
types; only a valid signature does. Verification failures return ``None`` rather than raising
so that callers treat every bad token (forged, expired, wrong audience, garbage) the same way:
as an anonymous shopper.
"""

from __future__ import annotations

import secrets
import time

import jwt

from cartguard.keys import Keys, load_keys

AUDIENCE = "cartguard-webchat"
ISSUER = "cartguard-shop-login"
DEFAULT_TTL_SECONDS = 60 * 60


def issue_login_token(
    customer_id: int, ttl_seconds: int = DEFAULT_TTL_SECONDS, keys: Keys | None = None
) -> str:
    """Sign a login token for ``customer_id`` (what the shop's login page would do)."""
    keys = keys or load_keys()
    now = int(time.time())
    claims = {
        "sub": str(customer_id),
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": secrets.token_urlsafe(12),
    }
    return jwt.encode(claims, keys.get("login_key"), algorithm="HS256")


def verify_login_token(token: object, keys: Keys | None = None) -> int | None:
    """Return the customer id of a valid token, else ``None`` (never trusts ``alg`` from input)."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        return None
    keys = keys or load_keys()
    try:
        claims = jwt.decode(
            token,
            keys.get("login_key"),
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
        return int(claims["sub"])
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
