"""Who is asking: the shopper's identity comes only from a verified login-token signature.

The channel puts the widget's signed login token (or, on Messenger, one minted for the linked
account) into the user message's metadata; we verify it on every turn. The ``customer_id`` slot
is only a memory of the last verified identity, used for turns Rasa itself creates after a
secure form was submitted (``EXTERNAL_*`` intents carry no metadata). A message with a missing or
bad token makes the shopper anonymous, whatever the slot said.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet

from cartguard.identity import verify_login_token


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


def identify(tracker: Tracker) -> tuple[int | None, list[dict[str, Any]]]:
    """Return the verified customer id (or None) and the slot events that record it."""
    event = latest_user_event(tracker) or {}
    intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name") or ""
    remembered = tracker.get_slot("customer_id")
    metadata = event.get("metadata") or {}
    if is_external(event, intent, metadata):
        # Created by Rasa's HTTP API for the web service after a secure form (JWT-protected):
        # it carries no login token, so the identity verified earlier in this conversation holds.
        return (int(remembered) if remembered is not None else None), []
    customer_id = verify_login_token(metadata.get("auth_token"))
    if customer_id == remembered:
        return customer_id, []
    return customer_id, [SlotSet("customer_id", customer_id)]
