"""Balances: store credit, gift card and loyalty points (sensitive: step-up first)."""

from __future__ import annotations

from rasa_sdk.events import SlotSet

from actions.base import Turn
from actions.format import money
from actions.sensitive import SensitiveAction
from cartguard.shop import queries
from cartguard.shop.models import Balance

#: the response that answers for one kind of balance (placeholder ``{value}``)
ONE_BALANCE = {
    "store_credit": "utter_balance_store_credit",
    "gift_card": "utter_balance_gift_card",
    "loyalty_points": "utter_balance_loyalty_points",
}


def value_text(row: Balance) -> str:
    if row.kind == "loyalty_points":
        return f"{int(row.amount):,}"
    return money(row.amount, row.currency)


class ActionCheckBalance(SensitiveAction):
    action_name = "action_check_balance"

    def serve(self, turn: Turn) -> None:
        rows = queries.balances(turn.session, turn.customer_id, turn.slot("balance_type"))
        values = {row.kind: value_text(row) for row in rows}
        if not values:
            turn.say("utter_no_balance")
        elif set(values) == set(ONE_BALANCE):
            turn.say("utter_balances", **values)  # one sentence naming all three
        else:
            for kind, value in values.items():
                turn.say(ONE_BALANCE[kind], value=value)
        turn.events.append(SlotSet("balance_type", None))
