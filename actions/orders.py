"""Orders: tracking, cancelling, changing the shipping address, refunds."""

from __future__ import annotations

from rasa_sdk.events import SlotSet

from actions.base import CartguardAction, Turn, button, link_button
from actions.format import bullets, date_text, money
from actions.sensitive import SensitiveAction
from cartguard.shop import queries
from cartguard.shop.ids import normalize_order_id
from cartguard.shop.models import Order

STATUS_TEXT = {
    "placed": "has been placed and is waiting to be packed",
    "processing": "is being packed",
    "shipped": "is on its way",
    "delivered": "was delivered",
    "cancelled": "was cancelled",
}


def not_found(order_id: str | None) -> str:
    shown = normalize_order_id(order_id) or order_id
    return (
        f"I can't find an order {shown} on your account. Order numbers look like CG-123456; "
        "you'll find yours in the confirmation e-mail."
    )


def describe(order: Order) -> str:
    parts = [f"Order {order.id} (placed {date_text(order.placed_at)}) {STATUS_TEXT[order.status]}."]
    if order.status == "shipped" and order.carrier:
        parts.append(
            f"Carrier: {order.carrier}, tracking number {order.tracking_number}; "
            f"expected by {date_text(order.estimated_delivery)}."
        )
    items = ", ".join(f"{item.name} x{item.quantity}" for item in order.items)
    parts.append(f"Items: {items}. Total {money(order.total, order.currency)}.")
    return " ".join(parts)


def order_choice(turn: Turn, intent: str, question: str, open_only: bool = False) -> None:
    """Ask which order, offering the most recent ones as buttons that repeat the request."""
    orders = queries.recent_orders(turn.session, turn.customer_id, limit=8)
    if open_only:
        orders = [order for order in orders if order.is_open]
    if not orders:
        turn.say("I don't see any orders on your account that this applies to.")
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
                turn.say("You have no orders with us yet.")
                return
            lines = [
                f"{o.id}: {STATUS_TEXT[o.status]} (placed {date_text(o.placed_at)})" for o in orders
            ]
            turn.say("Your latest orders:\n" + bullets(lines))
            return
        order = queries.find_order(turn.session, turn.customer_id, order_id)
        turn.say(describe(order) if order else not_found(order_id))
        turn.events.append(SlotSet("order_id", None))


class ActionCancelOrder(SensitiveAction):
    action_name = "action_cancel_order"

    def serve(self, turn: Turn) -> None:
        order_id = turn.slot("order_id")
        if not order_id:
            order_choice(
                turn, "cancel_order", "Which order would you like to cancel?", open_only=True
            )
            return
        result = queries.cancel_order(turn.session, turn.customer_id, order_id)
        shown = normalize_order_id(order_id)
        messages = {
            queries.CancelResult.CANCELLED: f"Done: order {shown} is cancelled. Any payment "
            "will be refunded to the original method within 5 business days.",
            queries.CancelResult.ALREADY_CANCELLED: f"Order {shown} was already cancelled.",
            queries.CancelResult.ALREADY_SHIPPED: f"Order {shown} has already shipped, so it "
            "can't be cancelled. Once it arrives you can ask me for a refund.",
            queries.CancelResult.NOT_FOUND: not_found(order_id),
        }
        turn.say(messages[result])
        turn.events.append(SlotSet("order_id", None))


class ActionChangeShippingAddress(SensitiveAction):
    action_name = "action_change_shipping_address"

    def serve(self, turn: Turn) -> None:
        order_id = turn.slot("order_id")
        if not order_id:
            order_choice(
                turn,
                "change_shipping_address",
                "Which order should go to a new address?",
                open_only=True,
            )
            return
        order = queries.find_order(turn.session, turn.customer_id, order_id)
        if order is None:
            turn.say(not_found(order_id))
        elif not order.is_open:
            turn.say(
                f"Order {order.id} {STATUS_TEXT[order.status]}, so its address can't be changed "
                "any more. I can connect you with our team if you need help."
            )
        else:
            link_url = turn.secure_link("address", payload={"order_id": order.id})
            turn.say(
                f"Please enter the new shipping address for {order.id} on our secure page "
                "(the link works once, for 10 minutes). Addresses are never typed into the chat.",
                buttons=[link_button("Change the address securely", link_url)],
            )
        turn.events.append(SlotSet("order_id", None))


class ActionAddressChanged(CartguardAction):
    action_name = "action_address_changed"

    def handle(self, turn: Turn) -> None:
        order_id = turn.slot("order_id")
        shown = normalize_order_id(order_id) or "your order"
        turn.say(f"The shipping address of {shown} has been updated.")
        turn.events.append(SlotSet("order_id", None))


class ActionRequestRefund(SensitiveAction):
    action_name = "action_request_refund"

    def serve(self, turn: Turn) -> None:
        order_id = turn.slot("order_id")
        if not order_id:
            order_choice(turn, "request_refund", "Which order would you like a refund for?")
            return
        outcome = queries.request_refund(turn.session, turn.customer_id, order_id)
        if outcome.outcome == "requested":
            refund = outcome.refund
            turn.say(
                f"I've opened refund {refund.id} for {money(refund.amount)} on order "
                f"{normalize_order_id(order_id)}. You'll get an update within 3 business days; "
                'ask me "where is my refund" any time.'
            )
        elif outcome.outcome == "already_requested":
            turn.say(
                f"There's already a refund ({outcome.refund.id}, {outcome.refund.status}) "
                f"for order {normalize_order_id(order_id)}."
            )
        elif outcome.outcome == "not_eligible":
            turn.say(
                f"Order {normalize_order_id(order_id)} hasn't been delivered yet, so it can't be "
                "refunded. If it's still open you can cancel it instead."
            )
        else:
            turn.say(not_found(order_id))
        turn.events.append(SlotSet("order_id", None))


class ActionTrackRefund(CartguardAction):
    action_name = "action_track_refund"

    def handle(self, turn: Turn) -> None:
        order_id = turn.slot("order_id")
        refunds = queries.refunds_for(turn.session, turn.customer_id, order_id)
        if not refunds:
            if order_id:
                turn.say(
                    f"I don't see a refund for order {normalize_order_id(order_id) or order_id}."
                )
            else:
                turn.say("You have no refunds in progress.")
        else:
            lines = [
                f"{r.id} for order {r.order_id}: {money(r.amount)}, {r.status} "
                f"(since {date_text(r.updated_at)})"
                for r in refunds[:3]
            ]
            turn.say("Your refunds:\n" + bullets(lines))
        turn.events.append(SlotSet("order_id", None))
