"""Orders: tracking, cancelling, changing the shipping address, refunds.

Another customer's order id is answered exactly like an unknown one: every lookup filters by
the verified customer in SQL, and the reply differs only by the id the shopper typed.
"""

from __future__ import annotations

from rasa_sdk.events import SlotSet

from actions.base import CartguardAction, Turn, button
from actions.format import bullets, date_text, money
from actions.sensitive import SensitiveAction
from cartguard.shop import queries
from cartguard.shop.ids import normalize_order_id
from cartguard.shop.models import Order

#: how an order is described, by its status
DESCRIBE = {
    "placed": "utter_order_placed",
    "processing": "utter_order_processing",
    "shipped": "utter_order_shipped",
    "delivered": "utter_order_delivered",
    "cancelled": "utter_order_was_cancelled",
}
CANCEL_OUTCOME = {
    queries.CancelResult.CANCELLED: "utter_order_cancel_done",
    queries.CancelResult.ALREADY_CANCELLED: "utter_order_already_cancelled",
    queries.CancelResult.ALREADY_SHIPPED: "utter_order_already_shipped",
    queries.CancelResult.NOT_FOUND: "utter_order_not_found",
}


def shown(order_id: str | None) -> str:
    """The id as we write it (CG-123456), or as typed when it is no order id at all."""
    return normalize_order_id(order_id) or str(order_id)


def describe(turn: Turn, order: Order) -> None:
    values = {
        "order_id": order.id,
        "placed_on": date_text(order.placed_at),
        "items": ", ".join(f"{item.quantity} × {item.name}" for item in order.items),
        "total": money(order.total, order.currency),
    }
    if order.status == "shipped" and not order.carrier:
        turn.say("utter_order_shipped_untracked", **values)
    elif order.status == "shipped":
        turn.say(
            "utter_order_shipped",
            carrier=order.carrier,
            tracking_number=order.tracking_number,
            expected_by=date_text(order.estimated_delivery),
            **values,
        )
    else:
        turn.say(DESCRIBE[order.status], **values)


def order_choice(turn: Turn, intent: str, question: str, open_only: bool = False) -> None:
    """Ask which order, offering the most recent ones as buttons that repeat the request."""
    orders = queries.recent_orders(turn.session, turn.customer_id, limit=8)
    if open_only:
        orders = [order for order in orders if order.is_open]
    if not orders:
        turn.say("utter_no_matching_orders")
        return
    buttons = [
        button(f"{o.id} ({o.status})", f'/{intent}{{"order_id": "{o.id}"}}') for o in orders[:3]
    ]
    turn.say(question, buttons=buttons)


class ActionTrackOrder(CartguardAction):
    action_name = "action_track_order"

    def handle(self, turn: Turn) -> None:
        order_id = turn.slot("order_id")
        if not order_id:
            orders = queries.recent_orders(turn.session, turn.customer_id, limit=3)
            if not orders:
                turn.say("utter_no_orders")
                return
            rows = [(o.id, o.status, date_text(o.placed_at)) for o in orders]
            turn.say("utter_latest_orders", order_list=bullets(rows))
            return
        order = queries.find_order(turn.session, turn.customer_id, order_id)
        if order is None:
            turn.say("utter_order_not_found", order_id=shown(order_id))
        else:
            describe(turn, order)
        turn.events.append(SlotSet("order_id", None))


class ActionCancelOrder(SensitiveAction):
    action_name = "action_cancel_order"

    def serve(self, turn: Turn) -> None:
        order_id = turn.slot("order_id")
        if not order_id:
            order_choice(turn, "cancel_order", "utter_which_order_to_cancel", open_only=True)
            return
        result = queries.cancel_order(turn.session, turn.customer_id, order_id)
        turn.say(CANCEL_OUTCOME[result], order_id=shown(order_id))
        turn.events.append(SlotSet("order_id", None))


class ActionChangeShippingAddress(SensitiveAction):
    action_name = "action_change_shipping_address"

    def serve(self, turn: Turn) -> None:
        order_id = turn.slot("order_id")
        if not order_id:
            order_choice(
                turn, "change_shipping_address", "utter_which_order_to_readdress", open_only=True
            )
            return
        order = queries.find_order(turn.session, turn.customer_id, order_id)
        if order is None:
            turn.say("utter_order_not_found", order_id=shown(order_id))
        elif not order.is_open:
            turn.say("utter_address_too_late", order_id=order.id, status=order.status)
        else:
            link_url = turn.secure_link("address", payload={"order_id": order.id})
            turn.say("utter_address_link", order_id=order.id, link_url=link_url)
        turn.events.append(SlotSet("order_id", None))


class ActionAddressChanged(CartguardAction):
    action_name = "action_address_changed"

    def handle(self, turn: Turn) -> None:
        order_id = normalize_order_id(turn.slot("order_id"))
        if order_id:
            turn.say("utter_address_changed", order_id=order_id)
        else:
            turn.say("utter_address_changed_some_order")
        turn.events.append(SlotSet("order_id", None))


class ActionRequestRefund(SensitiveAction):
    action_name = "action_request_refund"

    def serve(self, turn: Turn) -> None:
        order_id = turn.slot("order_id")
        if not order_id:
            order_choice(turn, "request_refund", "utter_which_order_to_refund")
            return
        outcome = queries.request_refund(turn.session, turn.customer_id, order_id)
        refund, order_id = outcome.refund, shown(order_id)
        if outcome.outcome == "requested":
            turn.say(
                "utter_refund_opened",
                refund_id=refund.id,
                amount=money(refund.amount),
                order_id=order_id,
            )
        elif outcome.outcome == "already_requested":
            turn.say(
                "utter_refund_exists",
                refund_id=refund.id,
                refund_status=refund.status,
                order_id=order_id,
            )
        elif outcome.outcome == "not_eligible":
            turn.say("utter_refund_not_eligible", order_id=order_id)
        else:
            turn.say("utter_order_not_found", order_id=order_id)
        turn.events.append(SlotSet("order_id", None))


class ActionTrackRefund(CartguardAction):
    action_name = "action_track_refund"

    def handle(self, turn: Turn) -> None:
        order_id = turn.slot("order_id")
        refunds = queries.refunds_for(turn.session, turn.customer_id, order_id)
        if refunds:
            rows = [
                (r.id, r.order_id, money(r.amount), r.status, date_text(r.updated_at))
                for r in refunds[:3]
            ]
            turn.say("utter_refunds", refund_list=bullets(rows))
        elif order_id:
            turn.say("utter_no_refund_for_order", order_id=shown(order_id))
        else:
            turn.say("utter_no_refunds")
        turn.events.append(SlotSet("order_id", None))
