"""Webchat session tickets: ids the server issues and signs, so a client cannot pick one.

A ticket has two halves, ``<conversation_id>.<signature>``:

* ``conversation_id`` is 128 random bits (hex). It is the Rasa ``sender_id`` and so appears in
  the tracker store, the event broker, logs and secure-form links. Knowing it is not enough to
  join the conversation.
* ``signature`` is HMAC-SHA256 of the conversation id under the installation's
  ``session_key``. Only the server can compute it and only the browser that was issued the
  ticket holds it; it is never passed to Rasa.

Who may speak in a conversation is decided elsewhere (:mod:`cartguard.shop.conversations`);
this module only answers "did we issue this ticket?" in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_DOMAIN = b"cartguard-webchat-session-v1|"
_CONVERSATION_ID = re.compile(r"^[0-9a-f]{32}$")
_SIGNATURE = re.compile(r"^[A-Za-z0-9_-]{43}$")
MAX_TICKET_CHARS = 128


@dataclass(frozen=True)
class Ticket:
    """An issued session: ``value`` goes to the browser, ``conversation_id`` to Rasa."""

    conversation_id: str
    value: str

    def __repr__(self) -> str:  # the value is a bearer credential: keep it out of logs
        return f"Ticket(conversation_id={self.conversation_id!r})"


def _sign(key: bytes, conversation_id: str) -> str:
    mac = hmac.new(key, _DOMAIN + conversation_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def issue_ticket(key: bytes) -> Ticket:
    """A new, unguessable conversation id and its signed ticket."""
    conversation_id = secrets.token_hex(16)
    return Ticket(conversation_id, f"{conversation_id}.{_sign(key, conversation_id)}")


def verify_ticket(key: bytes, value: object) -> Ticket | None:
    """The ticket if ``value`` is one we issued, else ``None`` (never raises on bad input)."""
    if not isinstance(value, str) or len(value) > MAX_TICKET_CHARS or value.count(".") != 1:
        return None
    conversation_id, signature = value.split(".")
    if not _CONVERSATION_ID.match(conversation_id) or not _SIGNATURE.match(signature):
        return None
    if not hmac.compare_digest(_sign(key, conversation_id), signature):
        return None
    return Ticket(conversation_id, value)
