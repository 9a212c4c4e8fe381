"""Who the shopper is: short-lived login tokens signed by the shop's login, verified here.

A token is a JWT (HS256, PyJWT) with the customer id as ``sub``, an audience naming the
webchat, and a lifetime of minutes. The chat never establishes identity from what a shopper
types; only a valid signature does. Verification failures return ``None`` rather than raising
so that callers treat every bad token (forged, expired, wrong audience, garbage) the same way:
as an anonymous shopper.

**Revocation.** A token the web service issues for a signed-in browser names that shop session
(claim ``sid``: the digest the ``web_sessions`` table is keyed by, not the cookie). It is valid
only while that session is: logging out, a staff ``security revoke-sessions`` or the session's
expiry end the token too, on every replica, because :func:`verify_login_token` looks the
session up in the shared database. Tokens without ``sid`` (minted per message by the Messenger
channel, or by ``cartguard login-token`` for testers) end only with their short lifetime.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import time
from dataclasses import dataclass

import jwt
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from cartguard.keys import Keys, load_keys
from cartguard.shop.db import DatabaseUnavailable, session_scope
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.channels import MessengerSeenEvent
from cartguard.shop.models.web import WebSession

log = logging.getLogger(__name__)

AUDIENCE = "cartguard-webchat"
ISSUER = "cartguard-shop-login"
DEFAULT_TTL_SECONDS = 60 * 60
SESSION_CLAIM = "sid"
_SESSION_REF = re.compile(r"^[0-9a-f]{64}$")


def issue_login_token(
    customer_id: int,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    keys: Keys | None = None,
    *,
    session_ref: str | None = None,
) -> str:
    """Sign a login token for ``customer_id`` (what the shop's login page would do).

    ``session_ref`` names the shop session the token belongs to; the token then ends with it.
    """
    if session_ref is not None and not _SESSION_REF.match(session_ref):
        raise ValueError("session_ref must be the 64-hex digest of a shop session")
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
    if session_ref is not None:
        claims[SESSION_CLAIM] = session_ref
    return jwt.encode(claims, keys.get("login_key"), algorithm="HS256")


def _signed_claims(
    token: object, keys: Keys | None, *, audience: str, issuer: str, required: list[str]
) -> dict | None:
    """Claims of an HS256 token signed with the login key for ``audience``, current, with
    every ``required`` claim and a numeric subject; else ``None``. One decoder for every
    identity this module issues, so none of them can be checked more loosely than another."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        return None
    try:
        claims = jwt.decode(
            token,
            (keys or load_keys()).get("login_key"),
            algorithms=["HS256"],
            audience=audience,
            issuer=issuer,
            options={"require": required},
        )
        int(claims["sub"])
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    return claims


def login_token_claims(token: object, keys: Keys | None = None) -> dict | None:
    """The claims of a correctly signed, current token, else ``None`` (no revocation check)."""
    claims = _signed_claims(
        token, keys, audience=AUDIENCE, issuer=ISSUER, required=["exp", "iat", "sub", "aud", "iss"]
    )
    if claims is None:
        return None
    sid = claims.get(SESSION_CLAIM)
    if sid is not None and not (isinstance(sid, str) and _SESSION_REF.match(sid)):
        return None
    return claims


def session_ref_of(token: object, keys: Keys | None = None) -> str | None:
    """The shop session a valid token belongs to (None: unsigned, invalid, or not bound)."""
    claims = login_token_claims(token, keys)
    return claims.get(SESSION_CLAIM) if claims else None


def ended_sessions(session_refs: set[str] | list[str]) -> set[str]:
    """Which of these shop sessions are over (logged out, revoked, expired or unknown).

    When the database cannot answer this raises :class:`DatabaseUnavailable` rather than
    guess: "ended" would sign every open chat out during a database restart (and forward a
    signed-in shopper's message as anonymous), "live" would let a logged-out token speak.
    Callers refuse instead: the channel says "try again", the actions say the shop's system
    is unavailable, the channel's periodic sign-out sweep waits for its next round.
    """
    refs = {ref for ref in session_refs if isinstance(ref, str) and _SESSION_REF.match(ref)}
    if not refs:
        return set()
    try:
        with session_scope() as session:
            rows = session.execute(
                select(WebSession.id_hash).where(
                    WebSession.id_hash.in_(sorted(refs)),
                    WebSession.revoked_at.is_(None),
                    WebSession.expires_at > utcnow(),
                )
            )
            live = {row[0] for row in rows}
    except SQLAlchemyError as exc:  # what session_scope does not already translate
        raise DatabaseUnavailable(f"cannot check the shop sessions: {exc}") from exc
    return refs - live


def _customer_of(claims: dict | None, session_live: bool) -> int | None:
    if claims is None or not session_live:
        return None
    return int(claims["sub"])


def verify_login_token(token: object, keys: Keys | None = None) -> int | None:
    """Return the customer id of a valid, unrevoked token, else ``None``.

    Never trusts ``alg`` from input. A token bound to a shop session costs one primary-key
    lookup; async callers use :func:`verify_login_token_async` to keep it off the event loop.
    """
    claims = login_token_claims(token, keys)
    sid = claims.get(SESSION_CLAIM) if claims else None
    return _customer_of(claims, sid is None or not ended_sessions({sid}))


async def verify_login_token_async(token: object, keys: Keys | None = None) -> int | None:
    """:func:`verify_login_token` for the event loop: the database lookup runs in a thread."""
    claims = login_token_claims(token, keys)
    sid = claims.get(SESSION_CLAIM) if claims else None
    live = sid is None or not await asyncio.to_thread(ended_sessions, {sid})
    return _customer_of(claims, live)


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
    claims = _signed_claims(
        token,
        keys,
        audience=EXTERNAL_AUDIENCE,
        issuer=EXTERNAL_ISSUER,
        required=["exp", "iat", "sub", "aud", "iss", "jti", "conv", "intent"],
    )
    if claims is None:
        return None
    try:
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
