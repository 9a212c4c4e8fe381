"""Invoices: find and show one (by invoice or order number) or list the latest (sensitive)."""

from __future__ import annotations

from rasa_sdk.events import SlotSet

from actions.base import Turn
from actions.format import bullets, date_text, money
from actions.sensitive import SensitiveAction
from cartguard.shop import queries
from cartguard.shop.models import Invoice


def describe(invoice: Invoice) -> str:
    order = f" for order {invoice.order_id}" if invoice.order_id else ""
    return (
        f"Invoice {invoice.id}{order}: {money(invoice.amount, invoice.currency)}, issued "
        f"{date_text(invoice.issued_on)}, {invoice.status}."
    )


class ActionGetInvoice(SensitiveAction):
    action_name = "action_get_invoice"

    def serve(self, turn: Turn) -> None:
        invoice_id, order_id = turn.slot("invoice_id"), turn.slot("order_id")
        if invoice_id or order_id:
            invoice = (
                queries.find_invoice(turn.session, turn.customer_id, invoice_id)
                if invoice_id
                else queries.invoice_for_order(turn.session, turn.customer_id, order_id)
            )
            if invoice is None:
                asked = invoice_id or f"order {order_id}"
                turn.say(
                    f"I can't find an invoice for {asked} on your account. Invoice numbers look "
                    "like INV-2026-00012."
                )
            else:
                turn.say(describe(invoice) + " A PDF copy is in your account's order history.")
        else:
            invoices = queries.recent_invoices(turn.session, turn.customer_id)
            if not invoices:
                turn.say("You have no invoices yet.")
            else:
                turn.say("Your latest invoices:\n" + bullets(describe(i) for i in invoices))
        turn.events.extend([SlotSet("invoice_id", None), SlotSet("order_id", None)])
