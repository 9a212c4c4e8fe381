"""Payments: update the saved card through a secure form, and help with payment problems."""

from __future__ import annotations

from rasa_sdk.events import SlotSet

from actions.base import CartguardAction, Turn, button, link_button
from actions.sensitive import SensitiveAction
from cartguard.shop import queries


class ActionUpdatePaymentMethod(SensitiveAction):
    action_name = "action_update_payment_method"

    def serve(self, turn: Turn) -> None:
        link_url = turn.secure_link("card")
        turn.say(
            "Please enter your new card on our secure page (the link works once, for 10 minutes). "
            "Never type card numbers into the chat.",
            buttons=[link_button("Update my card securely", link_url)],
        )


class ActionCardSaved(CartguardAction):
    action_name = "action_card_saved"

    def handle(self, turn: Turn) -> None:
        last4 = turn.slot("card_last4")
        if not last4:
            method = queries.default_payment_method(turn.session, turn.customer_id)
            last4 = method.last4 if method else None
        turn.say(
            f"Your card ending {last4} is saved as your default payment method."
            if last4
            else "Your new card is saved."
        )
        turn.events.append(SlotSet("card_last4", None))


class ActionPaymentIssue(CartguardAction):
    action_name = "action_payment_issue"
    needs_customer = False

    def handle(self, turn: Turn) -> None:
        hint = ""
        if turn.customer_id is not None:
            method = queries.default_payment_method(turn.session, turn.customer_id)
            if method:
                hint = (
                    f" Your saved card is a {method.brand.title()} ending {method.last4}, "
                    f"valid until {method.expiry}."
                )
        turn.say(
            "Sorry you're having trouble paying." + hint + " Most payment problems come from an "
            "expired card, a billing address that doesn't match the bank's, or a bank security "
            "check: your bank's app usually shows why. I can also connect you with our team.",
            buttons=[
                button("Update my card", "/update_payment_method"),
                button("Talk to a person", "/contact_human_agent"),
            ],
        )
