"""The customer's copy of their data (right of access / portability), as plain JSON.

Everything is selected by ``customer_id`` in SQL, so nothing of another customer can slip in.
Saved cards appear only as their mask; transcripts pass through the PII redactor (what the
tracker holds is already tokenized, and vault tokens are never resolved here: the export is
delivered through a link and must not become a way to read the vault).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cartguard.privacy.transcripts import redacted_transcript
from cartguard.shop.models import (
    Balance,
    ConversationOwner,
    Customer,
    Invoice,
    Order,
    PaymentMethod,
    SupportTicket,
)
from cartguard.shop.models._common import utcnow

EXPORT_FORMAT = "cartguard-export/1"


class CustomerNotFound(LookupError):
    """No customer has that id."""


def _plain(value: Any) -> Any:
    """Make a column value JSON-friendly without losing precision (money stays a string)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _row(obj: object, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: _plain(getattr(obj, name)) for name in fields}


def export_customer(session: Session, customer_id: int) -> dict[str, Any]:
    """Everything the shop and the assistant hold about one customer, JSON-serialisable."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise CustomerNotFound(f"there is no customer with id {customer_id}")
    orders = session.execute(
        select(Order)
        .options(
            selectinload(Order.items), selectinload(Order.history), selectinload(Order.refunds)
        )
        .where(Order.customer_id == customer_id)
        .order_by(Order.placed_at)
    ).scalars()
    invoices = session.execute(
        select(Invoice).where(Invoice.customer_id == customer_id).order_by(Invoice.issued_on)
    ).scalars()
    balances = session.execute(
        select(Balance).where(Balance.customer_id == customer_id).order_by(Balance.kind)
    ).scalars()
    cards = session.execute(
        select(PaymentMethod)
        .where(PaymentMethod.customer_id == customer_id)
        .order_by(PaymentMethod.created_at)
    ).scalars()
    tickets = session.execute(
        select(SupportTicket)
        .where(SupportTicket.customer_id == customer_id)
        .order_by(SupportTicket.created_at)
    ).scalars()
    conversations = session.execute(
        select(ConversationOwner)
        .where(ConversationOwner.customer_id == customer_id)
        .order_by(ConversationOwner.created_at)
    ).scalars()
    return {
        "format": EXPORT_FORMAT,
        "generated_at": _plain(utcnow()),
        "profile": _row(customer, ("id", "name", "email", "phone", "created_at", "pseudonymized")),
        "orders": [
            {
                **_row(
                    order,
                    (
                        "id",
                        "status",
                        "placed_at",
                        "total",
                        "currency",
                        "carrier",
                        "tracking_number",
                        "estimated_delivery",
                    ),
                ),
                "shipping_address": {
                    "name": order.ship_name,
                    "street": order.ship_street,
                    "city": order.ship_city,
                    "postcode": order.ship_postcode,
                    "country": order.ship_country,
                },
                "items": [
                    _row(item, ("sku", "name", "quantity", "unit_price")) for item in order.items
                ],
                "status_history": [_row(ev, ("status", "at", "note")) for ev in order.history],
                "refunds": [
                    _row(r, ("id", "amount", "status", "reason", "requested_at", "updated_at"))
                    for r in order.refunds
                ],
            }
            for order in orders
        ],
        "invoices": [
            _row(
                inv,
                ("id", "order_id", "issued_on", "amount", "currency", "status", "billing_name"),
            )
            for inv in invoices
        ],
        "balances": [_row(b, ("kind", "amount", "currency", "updated_at")) for b in balances],
        "payment_methods": [
            _row(card, ("brand", "mask", "expiry", "is_default", "created_at")) for card in cards
        ],
        "support_tickets": [
            _row(
                t,
                ("id", "kind", "status", "summary", "transcript", "reply", "created_at"),
            )
            for t in tickets
        ],
        "conversations": [
            {
                **_row(
                    conv,
                    (
                        "conversation_id",
                        "channel",
                        "created_at",
                        "last_seen_at",
                        "transcript_consent",
                    ),
                ),
                "transcript": [
                    line.as_dict() for line in redacted_transcript(conv.conversation_id)
                ],
            }
            for conv in conversations
        ],
    }
