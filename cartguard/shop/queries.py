"""Reads and writes the actions and the web service run against the shop, scoped to one customer.

Every write to shop records (orders, payment methods, tickets) is a function here, so one place
says what a change touches; callers own the transaction and the audit entry.

Every lookup takes the identified customer's id and filters on it in SQL, so an order or
invoice of someone else is indistinguishable from one that does not exist: both return
``None`` and the caller answers "I can't find that".
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from cartguard.shop.ids import (
    new_refund_id,
    new_ticket_id,
    normalize_invoice_id,
    normalize_order_id,
)
from cartguard.shop.models import (
    Balance,
    Customer,
    Invoice,
    Order,
    OrderStatusEvent,
    PaymentMethod,
    Refund,
    SupportTicket,
)
from cartguard.shop.models._common import utcnow


def get_customer(session: Session, customer_id: int) -> Customer | None:
    return session.get(Customer, customer_id)


def find_order(session: Session, customer_id: int, order_id: str | None) -> Order | None:
    """The customer's order with that id, or ``None`` (unknown and foreign ids look the same)."""
    normalized = normalize_order_id(order_id)
    if normalized is None:
        return None
    return session.execute(
        select(Order)
        .options(selectinload(Order.items), selectinload(Order.refunds))
        .where(Order.id == normalized, Order.customer_id == customer_id)
    ).scalar_one_or_none()


def recent_orders(session: Session, customer_id: int, limit: int = 3) -> list[Order]:
    return list(
        session.execute(
            select(Order)
            .where(Order.customer_id == customer_id)
            .order_by(Order.placed_at.desc())
            .limit(limit)
        ).scalars()
    )


class CancelResult(str, Enum):
    CANCELLED = "cancelled"
    NOT_FOUND = "not_found"
    ALREADY_SHIPPED = "already_shipped"
    ALREADY_CANCELLED = "already_cancelled"


def cancel_order(session: Session, customer_id: int, order_id: str | None) -> CancelResult:
    order = find_order(session, customer_id, order_id)
    if order is None:
        return CancelResult.NOT_FOUND
    if order.status == "cancelled":
        return CancelResult.ALREADY_CANCELLED
    if not order.is_open:
        return CancelResult.ALREADY_SHIPPED
    order.status = "cancelled"
    session.add(OrderStatusEvent(order_id=order.id, status="cancelled", note="by customer in chat"))
    return CancelResult.CANCELLED


@dataclass(frozen=True)
class RefundRequest:
    outcome: str  # "requested", "not_found", "not_eligible", "already_requested"
    refund: Refund | None = None


def request_refund(
    session: Session, customer_id: int, order_id: str | None, reason: str | None = None
) -> RefundRequest:
    """Open a refund for a delivered order (the whole amount less what is already refunded)."""
    order = find_order(session, customer_id, order_id)
    if order is None:
        return RefundRequest("not_found")
    if order.status != "delivered":
        return RefundRequest("not_eligible")
    if any(r.status in ("requested", "approved") for r in order.refunds):
        return RefundRequest("already_requested", order.refunds[0])
    refunded = sum((r.amount for r in order.refunds), Decimal("0"))
    refund = Refund(
        id=new_refund_id(), order_id=order.id, amount=order.total - refunded, reason=reason
    )
    session.add(refund)
    session.flush()
    return RefundRequest("requested", refund)


def refunds_for(session: Session, customer_id: int, order_id: str | None = None) -> list[Refund]:
    query = (
        select(Refund)
        .join(Order, Refund.order_id == Order.id)
        .where(Order.customer_id == customer_id)
        .order_by(Refund.requested_at.desc())
    )
    if order_id is not None:
        normalized = normalize_order_id(order_id)
        if normalized is None:
            return []
        query = query.where(Order.id == normalized)
    return list(session.execute(query).scalars())


def balances(session: Session, customer_id: int, kind: str | None = None) -> list[Balance]:
    query = select(Balance).where(Balance.customer_id == customer_id).order_by(Balance.kind)
    if kind:
        query = query.where(Balance.kind == kind)
    return list(session.execute(query).scalars())


def find_invoice(session: Session, customer_id: int, invoice_id: str | None) -> Invoice | None:
    normalized = normalize_invoice_id(invoice_id)
    if normalized is None:
        return None
    return session.execute(
        select(Invoice).where(Invoice.id == normalized, Invoice.customer_id == customer_id)
    ).scalar_one_or_none()


def invoice_for_order(session: Session, customer_id: int, order_id: str | None) -> Invoice | None:
    normalized = normalize_order_id(order_id)
    if normalized is None:
        return None
    return session.execute(
        select(Invoice).where(Invoice.order_id == normalized, Invoice.customer_id == customer_id)
    ).scalar_one_or_none()


def recent_invoices(session: Session, customer_id: int, limit: int = 3) -> list[Invoice]:
    return list(
        session.execute(
            select(Invoice)
            .where(Invoice.customer_id == customer_id)
            .order_by(Invoice.issued_on.desc(), Invoice.id.desc())
            .limit(limit)
        ).scalars()
    )


def default_payment_method(session: Session, customer_id: int) -> PaymentMethod | None:
    return session.execute(
        select(PaymentMethod)
        .where(PaymentMethod.customer_id == customer_id, PaymentMethod.is_default.is_(True))
        .order_by(PaymentMethod.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()


class AddressChange(str, Enum):
    CHANGED = "changed"
    NOT_FOUND = "not_found"
    CLOSED = "closed"


def change_delivery_address(
    session: Session, customer_id: int, order_id: str | None, address: dict[str, str]
) -> tuple[AddressChange, Order | None]:
    """Set an open order's delivery address (``ship_*`` columns), locking the row first so a
    concurrent shipment cannot slip between the check and the write."""
    order = find_order(session, customer_id, order_id)
    if order is None:
        return AddressChange.NOT_FOUND, None
    session.refresh(order, with_for_update=True)
    if not order.is_open:
        return AddressChange.CLOSED, order
    for name, value in address.items():
        if not name.startswith("ship_"):
            raise ValueError(f"not an address field: {name}")
        setattr(order, name, value)
    session.add(
        OrderStatusEvent(
            order_id=order.id,
            status=order.status,
            at=utcnow(),
            note="delivery address changed by the customer on a secure form",
        )
    )
    return AddressChange.CHANGED, order


def add_default_card(
    session: Session,
    customer_id: int,
    *,
    brand: str,
    last4: str,
    expiry: str,
    provider_token: str,
) -> PaymentMethod:
    """Store a card reference and make it the customer's only default.

    The shop keeps only what the payment provider answered: its token (in the
    ``vault_token`` column, a name from before cards went to the provider), the brand, the
    last four digits and the expiry. Never the number, not even encrypted: ``mask`` shows
    the last four only.
    """
    if not (len(last4) == 4 and last4.isdigit()):
        raise ValueError("last4 must be the card's last four digits")
    session.execute(
        update(PaymentMethod)
        .where(PaymentMethod.customer_id == customer_id)
        .values(is_default=False)
        .execution_options(synchronize_session=False)
    )
    method = PaymentMethod(
        customer_id=customer_id,
        brand=brand,
        mask="*" * 12 + last4,
        last4=last4,
        expiry=expiry,
        vault_token=provider_token,
        is_default=True,
        created_at=utcnow(),
    )
    session.add(method)
    return method


def create_ticket(
    session: Session,
    customer_id: int | None,
    conversation_id: str | None,
    kind: str,
    summary: str,
    transcript: str | None = None,
) -> SupportTicket:
    """Open a support ticket; ``summary`` and ``transcript`` must already be redacted."""
    ticket = SupportTicket(
        id=new_ticket_id(),
        customer_id=customer_id,
        conversation_id=conversation_id,
        kind=kind,
        summary=summary,
        transcript=transcript,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(ticket)
    session.flush()
    return ticket
