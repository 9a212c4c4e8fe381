"""Shared machinery for every action: identity, a database session per turn, clear failures.

Actions implement :meth:`CartguardAction.handle`, a synchronous function that reads the shop
and decides what to say. It runs in a worker thread with its own transaction so blocking
database calls never stall the action server's event loop, and a database outage becomes one
polite sentence for the shopper (nothing changed) and one clear log line for the operator.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.identity import ask_to_sign_in, identify
from cartguard.links import issue_link
from cartguard.settings import Settings, get_settings
from cartguard.shop.db import DatabaseUnavailable, session_scope

logger = logging.getLogger(__name__)

DB_DOWN_MESSAGE = (
    "Sorry, I can't reach our order system right now, so nothing was changed. "
    "Please try again in a few minutes."
)


@dataclass
class Turn:
    """Everything an action needs for one turn, and what it decides to say and record."""

    tracker: Tracker
    session: Session
    customer_id: int | None
    settings: Settings
    replies: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def conversation_id(self) -> str:
        return self.tracker.sender_id

    @property
    def intent(self) -> str | None:
        """The latest message's intent (as NLU or the HTTP API set it; no ranking needed)."""
        return (self.tracker.latest_message.get("intent") or {}).get("name")

    @property
    def channel(self) -> str | None:
        return self.tracker.get_latest_input_channel()

    def say(self, text: str | None = None, *, response: str | None = None, **kwargs: Any) -> None:
        self.replies.append({"text": text, "response": response, **kwargs})

    def slot(self, name: str) -> Any:
        return self.tracker.get_slot(name)

    def secure_link(self, purpose: str, payload: dict[str, Any] | None = None) -> str:
        """URL of a single-use secure form bound to this conversation, shopper and purpose."""
        return issue_link(
            self.session,
            conversation_id=self.conversation_id,
            customer_id=self.customer_id,
            purpose=purpose,
            channel=self.channel or "socketio",
            payload=payload,
        ).url


class CartguardAction(Action, ABC):
    """Base of every Cartguard action; subclasses set ``action_name`` and ``handle``."""

    action_name: str = ""
    #: when True an anonymous shopper is asked to log in and ``handle`` is not called
    needs_customer: bool = True

    def name(self) -> str:
        return self.action_name

    @abstractmethod
    def handle(self, turn: Turn) -> None:
        """Decide what to say (``turn.say``) and which events to record (``turn.events``)."""

    def _run_sync(self, tracker: Tracker, customer_id: int | None) -> Turn:
        with session_scope() as session:
            turn = Turn(tracker, session, customer_id, get_settings())
            if self.needs_customer and customer_id is None:
                ask_to_sign_in(turn, self.action_name)  # Messenger: a linking button
            else:
                self.handle(turn)
            return turn

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        customer_id, identity_events = identify(tracker)
        try:
            turn = await asyncio.to_thread(self._run_sync, tracker, customer_id)
        except DatabaseUnavailable as exc:
            logger.error("%s: %s", self.name(), exc)
            dispatcher.utter_message(text=DB_DOWN_MESSAGE)
            return identity_events
        for reply in turn.replies:
            dispatcher.utter_message(**{k: v for k, v in reply.items() if v is not None})
        return identity_events + turn.events


def button(title: str, payload: str) -> dict[str, str]:
    return {"title": title, "payload": payload}


def link_button(title: str, url: str) -> dict[str, str]:
    """A button that opens a URL (rasa-webchat and Messenger both render these as links)."""
    return {"title": title, "type": "web_url", "url": url, "payload": url}
