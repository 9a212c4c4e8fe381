"""Balances: store credit, gift card and loyalty points (sensitive: step-up first)."""

from __future__ import annotations

from rasa_sdk.events import SlotSet

from actions.base import Turn
from actions.format import bullets, money
from actions.sensitive import SensitiveAction
from cartguard.shop import queries

LABELS = {
    "store_credit": "Store credit",
    "gift_card": "Gift card balance",
    "loyalty_points": "Loyalty points",
}


class ActionCheckBalance(SensitiveAction):
    action_name = "action_check_balance"

    def serve(self, turn: Turn) -> None:
        kind = turn.slot("balance_type")
        rows = queries.balances(turn.session, turn.customer_id, kind)
        if not rows:
            turn.say("I don't see that kind of balance on your account.")
        else:
            lines = []
            for row in rows:
                value = (
                    f"{int(row.amount):,} points"
                    if row.kind == "loyalty_points"
                    else money(row.amount, row.currency)
                )
                lines.append(f"{LABELS[row.kind]}: {value}")
            turn.say(bullets(lines))
        turn.events.append(SlotSet("balance_type", None))
