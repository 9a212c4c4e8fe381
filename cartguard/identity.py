"""Who the shopper is: short-lived login tokens signed by the shop's login, verified here.

A token is a JWT (HS256, PyJWT) with the customer id as ``sub``, an audience naming the
webchat, and a lifetime of minutes. The chat never establishes identity from what a shopper
types; only a valid signature does. Verification failures return ``None`` rather than raising
so that callers treat every bad token (forged, expired, wrong audience, garbage) the same way:
as an anonymous shopper.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import jwt
from sqlalchemy.exc import IntegrityError

from cartguard.keys import Keys, load_keys
from cartguard.shop.db import session_scope
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.channels import MessengerSeenEvent

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



# --- EXTERNAL turns: what the web service tells a conversation --------------------------------
#
# ``trigger_intent`` creates a user event that carries no login token. Anyone holding Rasa's HTTP
# API secret can create such events, and set any slot, so the web service signs who the result
# is about with the login key (which Rasa never sees) and binds it to one conversation and one
# intent for two minutes; the action that accepts it uses it up (:func:`claim_external_identity`).

EXTERNAL_AUDIENCE = "cartguard-external"
EXTERNAL_ISSUER = "cartguard-web-service"
EXTERNAL_TTL_SECONDS = 120
#: the entity of the ``EXTERNAL_*`` user event that carries the signed identity
EXTERNAL_IDENTITY_ENTITY = "cartguard_identity"


@dataclass(frozen=True)
class ExternalIdentity:
    """A verified identity of one ``EXTERNAL_*`` turn (not yet used up)."""

    customer_id: int
    jti: str

    def __repr__(self) -> str:  # the jti is what makes it single use: keep it out of logs
        return f"ExternalIdentity(customer_id={self.customer_id})"


def issue_external_identity(
    customer_id: int,
    conversation_id: str,
    intent: str,
    *,
    ttl_seconds: int = EXTERNAL_TTL_SECONDS,
    keys: Keys | None = None,
) -> str:
    """Sign "this ``intent`` in ``conversation_id`` is about ``customer_id``" for one use."""
    if not isinstance(customer_id, int) or isinstance(customer_id, bool):
        raise ValueError("an external identity needs a customer id")
    if not conversation_id or not intent.startswith("EXTERNAL_"):
        raise ValueError("an external identity is bound to a conversation and an EXTERNAL_ intent")
    if not isinstance(ttl_seconds, int) or not 0 < ttl_seconds <= EXTERNAL_TTL_SECONDS:
        raise ValueError(f"an external identity lives between 1 and {EXTERNAL_TTL_SECONDS} s")
    keys = keys or load_keys()
    now = int(time.time())
    claims = {
        "sub": str(customer_id),
        "aud": EXTERNAL_AUDIENCE,
        "iss": EXTERNAL_ISSUER,
        "conv": conversation_id,
        "intent": intent,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(claims, keys.get("login_key"), algorithm="HS256")


def verify_external_identity(
    token: object, *, conversation_id: str, intent: str, keys: Keys | None = None
) -> ExternalIdentity | None:
    """The identity in ``token`` if it is signed, current, and made for this conversation and
    intent; else ``None``. Does not use it up: see :func:`claim_external_identity`."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        return None
    keys = keys or load_keys()
    try:
        claims = jwt.decode(
            token,
            keys.get("login_key"),
            algorithms=["HS256"],
            audience=EXTERNAL_AUDIENCE,
            issuer=EXTERNAL_ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss", "jti", "conv", "intent"]},
        )
        if claims["conv"] != conversation_id or claims["intent"] != intent:
            return None
        if int(claims["exp"]) - int(claims["iat"]) > EXTERNAL_TTL_SECONDS:
            return None
        return ExternalIdentity(customer_id=int(claims["sub"]), jti=str(claims["jti"]))
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None


def claim_external_identity(identity: ExternalIdentity) -> bool:
    """Use ``identity`` up; True only for the first caller, on any replica.

    The key goes into the table of events handled once (a primary-key insert, atomic on SQLite
    and PostgreSQL); it is purged with them after a day, long after the identity expired.
    """
    key = hashlib.sha256(f"external-identity\x1f{identity.jti}".encode()).hexdigest()
    try:
        with session_scope() as session:
            session.add(MessengerSeenEvent(event_key=key, seen_at=utcnow()))
    except IntegrityError:
        return False
    return True
