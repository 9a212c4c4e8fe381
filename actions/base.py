"""Shared machinery for every action: identity, a database session per turn, clear failures.

Actions implement :meth:`CartguardAction.handle`, a synchronous function that reads the shop
and decides what to say. It runs in a worker thread with its own transaction so blocking
database calls never stall the action server's event loop, and a database outage becomes one
polite sentence for the shopper (nothing changed; the turn ends there) and one clear log line
for the operator.

Actions never write shopper-facing sentences: they choose a response of ``domain.yml`` by name
(``turn.say("utter_...", value=...)``), where conversation designers edit the wording, and pass
the values its placeholders need. Rasa fills them in when it sends the reply.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.identity import ask_to_sign_in, identify
from cartguard.links import issue_link
from cartguard.settings import Settings, get_settings
from cartguard.shop.db import DatabaseUnavailable, session_scope

logger = logging.getLogger(__name__)

#: said (by name) whenever the shop database cannot be reached: nothing was changed
DB_DOWN_RESPONSE = "utter_db_unavailable"

T = TypeVar("T")


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

    def say(self, response: str, **values: Any) -> None:
        """Send the ``domain.yml`` response ``response``, filling its placeholders from ``values``
        (``buttons`` adds buttons the domain cannot know, such as a single-use link)."""
        if not response.startswith("utter_"):
            raise ValueError(f"say() takes a response name from domain.yml, not {response!r}")
        self.replies.append({"response": response, **values})

    def send(self, dispatcher: CollectingDispatcher) -> None:
        for reply in self.replies:
            dispatcher.utter_message(**{k: v for k, v in reply.items() if v is not None})

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

    def _handle_or_ask_to_sign_in(self, turn: Turn) -> None:
        if self.needs_customer and turn.customer_id is None:
            ask_to_sign_in(turn, self.action_name)  # Messenger: a linking button
        else:
            self.handle(turn)

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        identity_events: list[dict[str, Any]] = []
        try:
            # the identity lookups read the database: never on the event loop
            customer_id, identity_events = await asyncio.to_thread(identify, tracker)
            turn, _ = await run_turn(tracker, customer_id, self._handle_or_ask_to_sign_in)
        except DatabaseUnavailable as exc:
            logger.error("%s: %s", self.name(), exc)
            dispatcher.utter_message(response=DB_DOWN_RESPONSE)
            # nothing was recorded, so the slots the stories expect after this action are
            # missing and the policies would add an unrelated second answer ("I didn't quite
            # get that") to the turn: it ends here, with the one sentence above
            return [*identity_events, FollowupAction("action_listen")]
        turn.send(dispatcher)
        return identity_events + turn.events


async def run_turn(
    tracker: Tracker, customer_id: int | None, work: Callable[[Turn], T]
) -> tuple[Turn, T]:
    """Run ``work`` in a worker thread inside one transaction (committed if it returns).

    Raises :class:`DatabaseUnavailable` when the shop database cannot be reached; then nothing
    of the turn was committed.
    """

    def in_transaction() -> tuple[Turn, T]:
        with session_scope() as session:
            turn = Turn(tracker, session, customer_id, get_settings())
            return turn, work(turn)

    return await asyncio.to_thread(in_transaction)


def button(title: str, payload: str) -> dict[str, str]:
    return {"title": title, "payload": payload}
