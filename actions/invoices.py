"""Invoices: find and show one (by invoice or order number) or list the latest (sensitive)."""

from __future__ import annotations

from rasa_sdk.events import SlotSet

from actions.base import Turn
from actions.format import bullets, date_text, money
from actions.sensitive import SensitiveAction
from cartguard.shop import queries
from cartguard.shop.ids import normalize_invoice_id, normalize_order_id
from cartguard.shop.models import Invoice


def describe(turn: Turn, invoice: Invoice) -> None:
    values = {
        "invoice_id": invoice.id,
        "amount": money(invoice.amount, invoice.currency),
        "issued_on": date_text(invoice.issued_on),
        "invoice_status": invoice.status,
    }
    if invoice.order_id:
        turn.say("utter_invoice", order_id=invoice.order_id, **values)
    else:
        turn.say("utter_invoice_without_order", **values)


class ActionGetInvoice(SensitiveAction):
    action_name = "action_get_invoice"

    def serve(self, turn: Turn) -> None:
        invoice_id, order_id = turn.slot("invoice_id"), turn.slot("order_id")
        if invoice_id:
            invoice = queries.find_invoice(turn.session, turn.customer_id, invoice_id)
            if invoice is None:
                shown = normalize_invoice_id(invoice_id) or str(invoice_id)
                turn.say("utter_invoice_not_found", invoice_id=shown)
            else:
                describe(turn, invoice)
        elif order_id:
            invoice = queries.invoice_for_order(turn.session, turn.customer_id, order_id)
            if invoice is None:
                shown = normalize_order_id(order_id) or str(order_id)
                turn.say("utter_order_invoice_not_found", order_id=shown)
            else:
                describe(turn, invoice)
        else:
            invoices = queries.recent_invoices(turn.session, turn.customer_id)
            if not invoices:
                turn.say("utter_no_invoices")
            else:
                rows = [
                    (
                        i.id,
                        i.order_id or "-",
                        money(i.amount, i.currency),
                        date_text(i.issued_on),
                        i.status,
                    )
                    for i in invoices
                ]
                turn.say("utter_latest_invoices", invoice_list=bullets(rows))
        turn.events.extend([SlotSet("invoice_id", None), SlotSet("order_id", None)])
