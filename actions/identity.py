"""Who is asking: the shopper's identity comes only from a verified signature, on every turn.

* A message typed by a shopper carries the channel's signed login token in its metadata (the
  widget's token in webchat; on Messenger one the channel mints for the linked account).
* A turn the web service created with ``trigger_intent`` (``EXTERNAL_*``) carries a signed,
  two-minute, single-use identity bound to this conversation and this intent, as the entity
  :data:`~cartguard.identity.EXTERNAL_IDENTITY_ENTITY`. Rasa's HTTP API secret is enough to
  create such turns and to set any slot, so neither the turn nor the ``customer_id`` slot is
  trusted by itself; the first action that accepts the identity uses it up, so each EXTERNAL
  turn identifies the shopper for one action (the rules give every EXTERNAL intent one action).
* On Messenger the account link is re-checked in the database on every turn, so a shopper
  who unlinked (or whose link staff revoked) is anonymous at once, whatever token was minted.

The ``customer_id`` slot only remembers the last verified identity for the tracker; nothing
reads it to decide who someone is. A missing or bad signature makes the shopper anonymous.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet

from cartguard.account_links import linked_customer, start_linking
from cartguard.identity import (
    EXTERNAL_IDENTITY_ENTITY,
    claim_external_identity,
    verify_external_identity,
    verify_login_token,
)
from cartguard.shop.conversations import MESSENGER
from cartguard.shop.db import DatabaseUnavailable, session_scope

if TYPE_CHECKING:
    from actions.base import Turn

logger = logging.getLogger(__name__)


def latest_user_event(tracker: Tracker) -> dict[str, Any] | None:
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return event
    return None


def is_external(event: dict[str, Any], intent: str, metadata: dict[str, Any]) -> bool:
    """A turn created by ``trigger_intent`` (the channels strip client-sent metadata keys)."""
    return (
        intent.startswith("EXTERNAL_")
        and metadata.get("is_external") is True
        and event.get("text") == f"EXTERNAL: {intent}"
    )


def _entity_value(event: dict[str, Any], name: str) -> object:
    entities = (event.get("parse_data") or {}).get("entities") or event.get("entities") or []
    values = [e.get("value") for e in entities if isinstance(e, dict) and e.get("entity") == name]
    return values[0] if len(values) == 1 else None  # two identities in one turn: neither counts


def _external_customer(conversation_id: str, intent: str, event: dict[str, Any]) -> int | None:
    identity = verify_external_identity(
        _entity_value(event, EXTERNAL_IDENTITY_ENTITY),
        conversation_id=conversation_id,
        intent=intent,
    )
    if identity is None:
        logger.warning("identity: an %s turn without a valid signed identity", intent)
        return None
    if not claim_external_identity(identity):
        logger.warning("identity: a used %s identity was presented again (replay)", intent)
        return None
    return identity.customer_id


def _still_linked(psid: str, customer_id: int) -> bool:
    with session_scope() as session:
        return linked_customer(session, psid) == customer_id


def verified_customer(tracker: Tracker) -> int | None:
    """The customer this turn is verifiably about, or ``None`` (anonymous).

    Raises :class:`DatabaseUnavailable` when the shop database cannot tell (see
    :func:`cartguard.identity.ended_sessions`).
    """
    event = latest_user_event(tracker) or {}
    intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name") or ""
    metadata = event.get("metadata") or {}
    try:
        if is_external(event, intent, metadata):
            customer_id = _external_customer(tracker.sender_id, intent, event)
        else:
            customer_id = verify_login_token(metadata.get("auth_token"))
        if customer_id is not None and event.get("input_channel") == MESSENGER:
            if not _still_linked(tracker.sender_id, customer_id):
                return None
    except DatabaseUnavailable as exc:
        # not "anonymous": a signed-in shopper would be asked to sign in during a database
        # restart; the action answers that the shop's system is unavailable instead
        logger.error("identity: cannot check the shopper's identity: %s", exc)
        raise
    return customer_id


def identify(tracker: Tracker) -> tuple[int | None, list[dict[str, Any]]]:
    """Return the verified customer id (or None) and the slot events that record it."""
    customer_id = verified_customer(tracker)
    if customer_id == tracker.get_slot("customer_id"):
        return customer_id, []
    return customer_id, [SlotSet("customer_id", customer_id)]


def ask_to_sign_in(turn: Turn, pending_action: str | None = None) -> None:
    """Tell an anonymous shopper how to be recognised, remembering what they asked for.

    Webchat: log in on the shop's page. Messenger: a log-in button to a single-use, ten-minute
    linking page (no password or code is ever asked for in the chat); once the shopper signed
    in there, ``action_messenger_linked`` answers ``pending_action`` without being asked again.
    """
    if turn.channel != MESSENGER:
        turn.say(response="utter_please_login")
        return
    # the response's button is Messenger's log-in button (``type: account_link``)
    turn.say(
        response="utter_messenger_link", link_url=start_linking(turn.session, turn.conversation_id)
    )
    turn.events.append(SlotSet("pending_action", pending_action))
