"""Payments: update the saved card through a secure form, and help with payment problems."""

from __future__ import annotations

from rasa_sdk.events import SlotSet

from actions.base import CartguardAction, Turn
from actions.sensitive import SensitiveAction
from cartguard.shop import queries


class ActionUpdatePaymentMethod(SensitiveAction):
    action_name = "action_update_payment_method"

    def serve(self, turn: Turn) -> None:
        turn.say("utter_card_link", link_url=turn.secure_link("card"))


class ActionCardSaved(CartguardAction):
    action_name = "action_card_saved"

    def handle(self, turn: Turn) -> None:
        last4 = turn.slot("card_last4")
        if not last4:
            method = queries.default_payment_method(turn.session, turn.customer_id)
            last4 = method.last4 if method else None
        if last4:
            turn.say("utter_card_saved", last4=last4)
        else:
            turn.say("utter_card_saved_no_details")
        turn.events.append(SlotSet("card_last4", None))


class ActionPaymentIssue(CartguardAction):
    action_name = "action_payment_issue"
    needs_customer = False

    def handle(self, turn: Turn) -> None:
        method = None
        if turn.customer_id is not None:
            method = queries.default_payment_method(turn.session, turn.customer_id)
        if method is None:
            turn.say("utter_payment_issue")
        else:
            turn.say(
                "utter_payment_issue_saved_card",
                brand=method.brand.title(),
                last4=method.last4,
                expiry=method.expiry,
            )
