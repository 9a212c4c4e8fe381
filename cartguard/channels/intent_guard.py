"""Which typed messages may reach Rasa as an intent: the channels' guard against typed commands.

Rasa reads a message that starts with ``/`` as an intent, with entities in JSON after it
(``/EXTERNAL_card_saved{"card_last4": "..."}``) and without asking NLU. That is how buttons
work, and it also means a shopper can *type* an intent that only our own services may trigger:
typed into the widget, the example above made the bot confirm a card that was never saved,
with the attacker's link in place of the last four digits.

The rule (the channels apply it before Rasa sees a message):

* text Rasa would read as an intent named ``EXTERNAL_*`` (any case), or as any intent with
  entities, is refused,
* unless it is exactly the payload of a button or quick reply the bot offered *in that
  conversation*. Offers are recorded by the channels' output (:func:`remember_offered`) in the
  shared database, so every replica accepts the tap, and Messenger buttons keep working later.
* Everything else passes: ordinary text, and plain ``/intent`` without entities (what a
  button like "Talk to a person" sends; typing it is no different from tapping it).

How to call it from a channel (webchat does exactly this; Messenger does the same)::

    from cartguard.channels import intent_guard

    # incoming, after the length check and strip_control_chars, before Rasa sees the text:
    if not await intent_guard.allowed_text(conversation_id, text):
        ...reply replies.COMMAND_REFUSED and drop the message...

    # outgoing, in the output channel, *before* sending buttons or quick replies:
    await intent_guard.remember_offered(conversation_id, intent_guard.payloads_of(buttons))

The parsing mirrors Rasa 3.6's ``YAMLStoryReader.unpack_regex_message`` (a test compares the
two on generated input), so the guard refuses exactly what Rasa would have unpacked.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cartguard.shop.conversations import run_in_db
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.offers import OfferedPayload

#: Rasa 3.6's pattern for messages that name an intent (rasa.shared.constants.INTENT_MESSAGE_PREFIX
#: and YAMLStoryReader._regex_message_pattern), matched against the stripped text.
_INTENT_MESSAGE = re.compile(
    r"^/(?P<intent>[^{@]+)(?P<confidence>@[0-9.]+)?(?P<entities>\{.+\})?(?P<rest>.*)"
)
_RESERVED_PREFIX = "external_"
MAX_CONVERSATION_ID = 64


@dataclass(frozen=True)
class TypedCommand:
    """What Rasa would make of a message that starts with ``/``."""

    intent: str
    has_entities: bool


def parse_command(text: str) -> TypedCommand | None:
    """The intent and entities Rasa would unpack from ``text``, or None for ordinary text."""
    match = _INTENT_MESSAGE.match(text.strip())
    if match is None:
        return None
    intent = match.group("intent").strip()
    if not intent:
        return None
    return TypedCommand(intent=intent, has_entities=match.group("entities") is not None)


def needs_offer(text: str) -> bool:
    """True when ``text`` may reach Rasa only as a payload the bot offered."""
    command = parse_command(text)
    if command is None:
        return False
    return command.has_entities or command.intent.lower().startswith(_RESERVED_PREFIX)


def _digest(payload: str) -> str:
    return hashlib.sha256(payload.strip().encode()).hexdigest()


def payloads_of(buttons: Iterable[Any] | None) -> list[str]:
    """The payloads a list of Rasa buttons or quick replies would send back when tapped.

    Link buttons (``web_url``) open a page and send nothing, so they are left out.
    """
    found: list[str] = []
    for button in buttons or ():
        if not isinstance(button, Mapping) or button.get("type") == "web_url":
            continue
        payload = button.get("payload")
        if isinstance(payload, str) and payload.strip():
            found.append(payload)
    return found


# --- the database side (sync, with the caller's session) -------------------------------------


def was_offered(session: Session, conversation_id: str, text: str) -> bool:
    """True when the bot offered exactly ``text`` as a payload in this conversation."""
    if not conversation_id or len(conversation_id) > MAX_CONVERSATION_ID:
        return False
    row = session.get(OfferedPayload, (conversation_id, _digest(text)))
    return row is not None


def allowed_text_in(session: Session, conversation_id: str, text: str) -> bool:
    """The guard's verdict on one incoming message (sync; see :func:`allowed_text`)."""
    return not needs_offer(text) or was_offered(session, conversation_id, text)


def remember_offered_in(
    session: Session, conversation_id: str, payloads: Iterable[str], *, now: datetime | None = None
) -> int:
    """Record the payloads that need an offer; returns how many were recorded or refreshed."""
    wanted = {_digest(p) for p in payloads if isinstance(p, str) and needs_offer(p)}
    if not wanted:
        return 0
    if not conversation_id or len(conversation_id) > MAX_CONVERSATION_ID:
        raise ValueError(f"a conversation id has 1 to {MAX_CONVERSATION_ID} characters")
    now = now or utcnow()
    for digest in sorted(wanted):
        row = session.get(OfferedPayload, (conversation_id, digest))
        if row is not None:
            row.offered_at = now
            continue
        try:
            with session.begin_nested():  # another replica may offer the same button now
                session.add(
                    OfferedPayload(
                        conversation_id=conversation_id, payload_digest=digest, offered_at=now
                    )
                )
        except IntegrityError:
            pass  # recorded by the other writer: the offer stands either way
    session.flush()
    return len(wanted)


def forget_conversation(session: Session, conversation_id: str) -> int:
    """Drop every offer of one conversation (erasure, "forget this conversation")."""
    result = session.execute(
        delete(OfferedPayload).where(OfferedPayload.conversation_id == conversation_id)
    )
    return result.rowcount or 0


def purge_offered(session: Session, before: datetime) -> int:
    """Delete offers made before ``before`` (retention); returns how many went."""
    result = session.execute(delete(OfferedPayload).where(OfferedPayload.offered_at < before))
    return result.rowcount or 0


def offers_of(session: Session, conversation_id: str) -> int:
    """How many payloads are on record for a conversation (tests and diagnostics)."""
    rows = session.execute(
        select(OfferedPayload.payload_digest).where(
            OfferedPayload.conversation_id == conversation_id
        )
    )
    return len(rows.all())


# --- what the channels call (async, off the event loop) ----------------------------------------


async def allowed_text(conversation_id: str, text: str) -> bool:
    """May ``text`` be forwarded to Rasa in this conversation? (no database work for most text)"""
    if not needs_offer(text):
        return True
    return await run_in_db(was_offered, conversation_id, text)


async def remember_offered(conversation_id: str, payloads: Iterable[str]) -> None:
    """Record what the bot is about to offer, so tapping it later is accepted."""
    payloads = [p for p in payloads if isinstance(p, str) and needs_offer(p)]
    if payloads:
        await run_in_db(remember_offered_in, conversation_id, payloads)
