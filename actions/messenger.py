"""Messenger account linking in the dialogue: after the shopper signed in, and unlinking.

An anonymous Messenger shopper who asks about their account gets a log-in button
(:func:`actions.identity.ask_to_sign_in`, called wherever an account action meets an anonymous
shopper) and the request is remembered in ``pending_action``. When they have signed in on the
linking page, the web service triggers ``EXTERNAL_messenger_linked`` with a signed identity;
:class:`ActionMessengerLinked` confirms who they are linked as and answers the pending request
in the same turn (a sensitive one goes through the step-up gate: on Messenger, a secure form).

"Unlink my account" / "log me out" (intent ``unlink_account``) removes this Messenger user's
link at once, audited; the shop's account page and staff (``cartguard channels
messenger-unlink``) can remove links too.
"""

from __future__ import annotations

from collections.abc import Iterator

from rasa_sdk.events import SlotSet

# Every feature module, so that the registries below know every action (the action server
# imports them all anyway; a test or another entry point might not).
from actions import balances, invoices, orders, payments, privacy, support  # noqa: F401
from actions.base import CartguardAction, Turn
from actions.sensitive import SENSITIVE_ACTIONS
from actions.stepup import ActionStepUpGate
from cartguard.account_links import linked_customer, unlink_psid
from cartguard.shop.conversations import MESSENGER
from cartguard.shop.models import Customer


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def account_action(name: str | None) -> type[CartguardAction] | None:
    """The account action called ``name`` (one that needs a signed-in customer), if any."""
    if not name:
        return None
    for cls in _subclasses(CartguardAction):
        if getattr(cls, "action_name", "") == name and cls.needs_customer:
            return cls
    return None


def first_name(turn: Turn) -> str:
    customer = turn.session.get(Customer, turn.customer_id)
    name = (customer.name or "").split() if customer is not None else []
    return name[0] if name else "you"


def answer_pending(turn: Turn, pending: str | None) -> None:
    """Carry on with what the shopper asked before signing in, without asking again."""
    if pending in SENSITIVE_ACTIONS:
        ActionStepUpGate().decide(turn, pending)
        fresh = any(
            e.get("name") == "stepup_status" and e.get("value") == "fresh" for e in turn.events
        )
        if fresh:
            SENSITIVE_ACTIONS[pending]().handle(turn)
        return
    action = account_action(pending)
    if action is not None:
        action().handle(turn)


class ActionMessengerLinked(CartguardAction):
    """``EXTERNAL_messenger_linked``: confirm the link, then answer the pending request."""

    action_name = "action_messenger_linked"

    def handle(self, turn: Turn) -> None:
        pending = turn.slot("pending_action")
        turn.events.append(SlotSet("pending_action", None))
        turn.say(response="utter_messenger_linked", name=first_name(turn))
        answer_pending(turn, pending)


class ActionUnlinkAccount(CartguardAction):
    """``unlink_account``: on Messenger remove this user's link (and its step-up); in the
    webchat explain where to log out."""

    action_name = "action_unlink_account"
    needs_customer = False

    def handle(self, turn: Turn) -> None:
        if turn.channel != MESSENGER:
            turn.say(response="utter_logout_on_the_shop_page")
            return
        psid = turn.conversation_id
        linked = linked_customer(turn.session, psid)
        if linked is None:
            turn.say(response="utter_messenger_not_linked")
            return
        unlink_psid(turn.session, psid, actor=f"customer:{linked}")  # its step-up ends too
        turn.events.extend(
            [
                SlotSet("customer_id", None),
                SlotSet("pending_action", None),
                SlotSet("stepup_status", None),
            ]
        )
        turn.say(response="utter_messenger_unlinked")
