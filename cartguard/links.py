"""Single-use, short-lived links from a conversation to a secure form.

A link is ``{public_web_url}/s/{token}``: the token is 256 random bits and nothing else, so
no personal data ever sits in a URL, a browser history or an access log. The database keeps
only ``HMAC-SHA256(link_key, token)``, so a leaked table does not yield usable links. Each
link is bound to the conversation and the purpose it was issued for, expires after at most
ten minutes (thirty for a link sent by e-mail, which takes a while to arrive) and can be
consumed once (a conditional ``UPDATE``: two concurrent submits cannot both succeed).

A link works only for the customer it was made for, signed in to the web shop: whoever else
holds it (a forwarded chat, a shared screen, a mail scanner) gets :class:`LinkLoginRequired`
or :class:`LinkForbidden`, and nothing of the form. The viewer is a required argument of
:func:`open_link` and :func:`consume_link`, so a page cannot forget to pass it. A link issued
without a customer (linking a Messenger conversation) then belongs to whoever signs in; that
form asks for the e-mail, password and authenticator code on the page itself
(:data:`SIGNS_IN_ON_THE_PAGE`), so it is the one purpose that opens without a shop session.

Callers cannot choose weaker settings: the token length, hashing and the maximum lifetime
are fixed here. Unknown and tampered tokens raise the same :class:`LinkNotFound` with the
same message, so probing tokens learns nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from cartguard.keys import load_keys
from cartguard.monitoring import metrics
from cartguard.settings import get_settings
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.links import SecureLink

PURPOSES = ("card", "address", "otp", "export", "messenger_link", "enrol", "enrol_email")
MAX_TTL_SECONDS = 600
#: purposes whose link travels by e-mail, with the longer lifetime that needs
EMAIL_TTL_SECONDS = {"enrol_email": 1800}
#: forms that sign the shopper in themselves (e-mail, password and authenticator code on the
#: page), so they open without a web shop session: linking a Messenger user to an account
SIGNS_IN_ON_THE_PAGE = frozenset({"messenger_link"})
TOKEN_BYTES = 32  # 256 bits; the issue asks for at least 128
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # token_urlsafe(32) without padding
_PAYLOAD_MAX_CHARS = 1000


class LinkError(Exception):
    """A link cannot be used; ``http_status`` and ``str(error)`` are safe to show."""

    http_status = 400
    default_message = "This link cannot be used."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class LinkNotFound(LinkError):
    """Unknown, tampered, or issued for another form: indistinguishable on purpose."""

    http_status = 404
    default_message = "This link is not valid. Please ask the assistant in the chat for a new one."


class LinkGone(LinkError):
    """The link was already used or has expired."""

    http_status = 410
    default_message = (
        "This link has expired or has already been used. "
        "Please ask the assistant in the chat for a new one."
    )


class LinkLoginRequired(LinkError):
    """Nobody is signed in: a secure form acts only for the customer it was made for."""

    http_status = 401
    default_message = (
        "Please sign in to your account first: this link works only for the account it was "
        "made for."
    )


class LinkForbidden(LinkError):
    """A different logged-in customer than the one the link was made for."""

    http_status = 403
    default_message = (
        "This link was created for a different account. Please sign in with the account "
        "you were chatting with, or ask the assistant for a new link."
    )


@dataclass(frozen=True)
class IssuedLink:
    """What the action server sends to the shopper. ``token`` is shown once, never stored."""

    token: str
    url: str
    expires_at: datetime

    def __repr__(self) -> str:  # the token is a bearer credential: keep it out of logs
        return f"IssuedLink(url=<hidden>, expires_at={self.expires_at.isoformat()})"


@dataclass(frozen=True)
class Link:
    """A validated link, as the secure-form pages see it (a snapshot, not the ORM row)."""

    id: int
    conversation_id: str
    customer_id: int | None
    purpose: str
    channel: str
    payload: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


def _hash(token: str) -> str:
    return hmac.new(load_keys().raw("link_key"), token.encode(), hashlib.sha256).hexdigest()


def _check_payload(payload: dict | None) -> str:
    """Serialize the payload, refusing anything that is not small, flat, plain JSON."""
    payload = payload or {}
    if not isinstance(payload, dict):
        raise ValueError("link payload must be a dict of simple values")
    for key, value in payload.items():
        if not isinstance(key, str) or not isinstance(value, str | int | float | bool | None):
            raise ValueError(
                "link payload values must be plain strings, numbers or booleans "
                "(identifiers like an order id, never personal data)"
            )
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    if len(text) > _PAYLOAD_MAX_CHARS:
        raise ValueError(f"link payload is larger than {_PAYLOAD_MAX_CHARS} characters")
    return text


def issue_link(
    session: Session,
    *,
    conversation_id: str,
    customer_id: int | None,
    purpose: str,
    channel: str = "socketio",
    payload: dict | None = None,
    ttl_seconds: int | None = None,
) -> IssuedLink:
    """Create a link for ``purpose`` in this conversation; the caller commits.

    The lifetime defaults to the longest allowed for the purpose (10 minutes; 30 for links
    sent by e-mail) and can only be shortened.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown link purpose {purpose!r}; expected one of {PURPOSES}")
    if not conversation_id or len(conversation_id) > 64:
        raise ValueError("a link needs the conversation id it belongs to (at most 64 chars)")
    longest = EMAIL_TTL_SECONDS.get(purpose, MAX_TTL_SECONDS)
    if ttl_seconds is None:
        ttl_seconds = longest
    if not isinstance(ttl_seconds, int) or not 0 < ttl_seconds <= longest:
        raise ValueError(f"a {purpose} link lives between 1 and {longest} seconds")
    payload_json = _check_payload(payload)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    expires_at = now + timedelta(seconds=ttl_seconds)
    session.add(
        SecureLink(
            token_hash=_hash(token),
            conversation_id=conversation_id,
            customer_id=customer_id,
            purpose=purpose,
            channel=channel,
            payload=payload_json,
            created_at=now,
            expires_at=expires_at,
        )
    )
    session.flush()
    url = f"{get_settings().public_web_url}/s/{token}"
    metrics.record_link("issued")
    return IssuedLink(token=token, url=url, expires_at=expires_at)


def _snapshot(row: SecureLink) -> Link:
    return Link(
        id=row.id,
        conversation_id=row.conversation_id,
        customer_id=row.customer_id,
        purpose=row.purpose,
        channel=row.channel,
        payload=json.loads(row.payload or "{}"),
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
    )


def _find(
    session: Session,
    token: object,
    purpose: str | None,
    viewer_customer_id: int | None,
    now: datetime,
) -> SecureLink:
    """The row behind a usable token, or the :class:`LinkError` explaining why not."""
    # A malformed token still costs one HMAC, like a well-formed unknown one.
    shaped = isinstance(token, str) and bool(_TOKEN_SHAPE.match(token))
    digest = _hash(token if shaped else "-")
    row = None
    if shaped:
        row = session.execute(
            select(SecureLink)
            .where(SecureLink.token_hash == digest)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
    if row is None or (purpose is not None and row.purpose != purpose):
        raise LinkNotFound()
    if viewer_customer_id is None and row.purpose not in SIGNS_IN_ON_THE_PAGE:
        raise LinkLoginRequired()
    if row.customer_id is not None and viewer_customer_id != row.customer_id:
        raise LinkForbidden()
    if row.used_at is not None or row.expires_at <= now:
        raise LinkGone()
    return row


def open_link(
    session: Session,
    token: str,
    *,
    viewer_customer_id: int | None,
    purpose: str | None = None,
    now: datetime | None = None,
) -> Link:
    """Validate a link for the signed-in ``viewer_customer_id`` without using it up (GET).

    ``viewer_customer_id`` is who is signed in to the web shop (None: nobody), never a value
    taken from the link or the request.
    """
    return _snapshot(_find(session, token, purpose, viewer_customer_id, now or utcnow()))


def consume_link(
    session: Session,
    token: str,
    *,
    viewer_customer_id: int | None,
    purpose: str | None = None,
    now: datetime | None = None,
) -> Link:
    """Validate and use up a link (the form's POST). Only one caller can ever succeed."""
    now = now or utcnow()
    row = _find(session, token, purpose, viewer_customer_id, now)
    result = session.execute(
        update(SecureLink)
        .where(
            SecureLink.id == row.id,
            SecureLink.used_at.is_(None),
            SecureLink.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session="fetch")
    )
    if result.rowcount != 1:
        raise LinkGone()
    session.refresh(row)
    return _snapshot(row)


def count_issued(session: Session, *, customer_id: int, purpose: str, since: datetime) -> int:
    """How many ``purpose`` links were issued to ``customer_id`` since ``since`` (rate limits)."""
    rows = session.execute(
        select(SecureLink.id).where(
            SecureLink.customer_id == customer_id,
            SecureLink.purpose == purpose,
            SecureLink.created_at >= since,
        )
    )
    return len(rows.all())


def purge_expired_links(session: Session, now: datetime | None = None) -> int:
    """Delete links past their expiry (used or not); returns how many went."""
    now = now or utcnow()
    result = session.execute(delete(SecureLink).where(SecureLink.expires_at <= now))
    return result.rowcount or 0
