"""Right to erasure: remove or pseudonymize everything the law lets go, keep the invoices.

What :func:`erase_customer` does, in this order (the vault and the tracker database are
separate stores, so they are cleared first; the shop rows change in the caller's transaction):

1. the tracker events of every conversation the customer owned, and those conversation rows;
2. the customer's vault tokens (saved cards, contact details, codes) and per-conversation tokens;
3. TOTP enrolment and step-up sessions, secure links, the Messenger account link, the shop
   login (it holds the e-mail address), browser sessions and per-conversation channel rows;
4. saved payment methods; the transcripts and replies of their support tickets;
5. the customer row (name, e-mail, phone) and every order's shipping name and address are
   replaced by non-identifying values, and free-text notes naming them are scrubbed;
6. invoices are kept intact, billing name included: tax law requires them;
7. one audit entry with counts only.

After the caller commits, the SQLite files are rebuilt so deleted values are gone from disk
too (see :mod:`cartguard.privacy.scrub`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session

from cartguard import audit
from cartguard.privacy import integrations
from cartguard.privacy.export import CustomerNotFound
from cartguard.privacy.scrub import scrub_sqlite
from cartguard.privacy.transcripts import delete_conversations, tracker_engine
from cartguard.shop.models import (
    ConversationOwner,
    Customer,
    Invoice,
    Order,
    OrderStatusEvent,
    PaymentMethod,
    Refund,
    SupportTicket,
)
from cartguard.shop.models._common import utcnow

ERASED = "[erased]"
TICKET_SUMMARY_ERASED = "[removed at the customer's request]"


@dataclass(frozen=True)
class ErasureReport:
    """Counts of what was removed, per area."""

    customer_id: int
    conversations: int
    tracker_events: int
    vault_tokens: int
    stepup_records: int
    secure_links: int
    messenger_links: int
    login_and_session_rows: int
    payment_methods: int
    tickets_scrubbed: int
    orders_pseudonymized: int
    invoices_kept: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class ConversationForgotten:
    conversation_id: str
    tracker_events: int
    vault_tokens: int


def forget_conversation(conversation_id: str) -> ConversationForgotten:
    """Delete one conversation's tracker events and vault tokens (consent declined, "forget").

    Note for callers inside Rasa: ``SQLTrackerStore.save`` re-appends every event it holds in
    memory beyond the stored count, so deleting the *current* conversation from an action is
    undone at the end of that turn; run this after the turn (or restart the session first).
    """
    events = delete_conversations([conversation_id])
    tokens = integrations.vault_forget_conversation(conversation_id)
    if events:
        scrub_sqlite(tracker_engine())
    return ConversationForgotten(conversation_id, events, tokens)


def _scrub_text(text: str | None, secrets_: list[str]) -> str | None:
    """Replace each known personal value in free text (notes, reasons) with a marker."""
    if not text:
        return text
    result = text
    for value in secrets_:
        if value and len(value) >= 3:
            result = _replace_ci(result, value, ERASED)
    return result


def _replace_ci(text: str, needle: str, replacement: str) -> str:
    lowered, target = text.lower(), needle.lower()
    out, start = [], 0
    while (found := lowered.find(target, start)) != -1:
        out.append(text[start:found])
        out.append(replacement)
        start = found + len(target)
    out.append(text[start:])
    return "".join(out)


def _schedule_scrub(session: Session) -> None:
    """Rebuild the shop's SQLite file once the caller's transaction has committed."""

    def _after_commit(committed: Session) -> None:
        bind = committed.get_bind()
        engine = getattr(bind, "engine", bind)
        scrub_sqlite(engine)

    event.listen(session, "after_commit", _after_commit, once=True)


def erase_customer(session: Session, customer_id: int, *, actor: str) -> ErasureReport:
    """Erase or pseudonymize the customer's data; see the module docstring for the steps."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise CustomerNotFound(f"there is no customer with id {customer_id}")

    conversation_ids = list(
        session.execute(
            select(ConversationOwner.conversation_id).where(
                ConversationOwner.customer_id == customer_id
            )
        ).scalars()
    )
    # 1-2: the separate stores first, so shop rows are changed only after they are clear
    tracker_events = delete_conversations(conversation_ids)
    vault_tokens = integrations.vault_forget_customer(customer_id, session)
    for conversation_id in conversation_ids:
        per_conversation = integrations.vault_forget_conversation(conversation_id, session)
        if vault_tokens is not None and per_conversation:
            vault_tokens += per_conversation
    if tracker_events:
        scrub_sqlite(tracker_engine())

    # 3: state other areas keep about this person
    stepup_records = integrations.stepup_forget_customer(session, customer_id)
    secure_links = integrations.links_forget_customer(session, customer_id)
    messenger_links = integrations.messenger_unlink(session, customer_id)
    other_rows = integrations.forget_customer_rows(session, customer_id)
    other_rows += integrations.forget_conversation_rows(session, conversation_ids)
    if conversation_ids:
        session.execute(
            delete(ConversationOwner).where(ConversationOwner.customer_id == customer_id)
        )

    # 4: cards and ticket texts
    payment_methods = (
        session.execute(
            delete(PaymentMethod).where(PaymentMethod.customer_id == customer_id)
        ).rowcount
        or 0
    )
    tickets = list(
        session.execute(
            select(SupportTicket).where(
                (SupportTicket.customer_id == customer_id)
                | SupportTicket.conversation_id.in_(conversation_ids or [""])
            )
        ).scalars()
    )
    now = utcnow()
    for ticket in tickets:
        ticket.summary = TICKET_SUMMARY_ERASED
        ticket.transcript = None
        ticket.reply = None
        ticket.updated_at = now

    # 5: pseudonymize, after collecting the values free text might repeat
    orders = list(session.execute(select(Order).where(Order.customer_id == customer_id)).scalars())
    personal = [customer.name, customer.email, customer.phone or ""]
    for order in orders:
        personal += [order.ship_name, order.ship_street, order.ship_city, order.ship_postcode]
    personal = sorted({p for p in personal if p and p != ERASED}, key=len, reverse=True)
    order_ids = [order.id for order in orders]
    for order in orders:
        order.ship_name = ERASED
        order.ship_street = ERASED
        order.ship_city = ERASED
        order.ship_postcode = ERASED
    if order_ids:
        for note_holder in session.execute(
            select(OrderStatusEvent).where(OrderStatusEvent.order_id.in_(order_ids))
        ).scalars():
            note_holder.note = _scrub_text(note_holder.note, personal)
        for refund in session.execute(
            select(Refund).where(Refund.order_id.in_(order_ids))
        ).scalars():
            refund.reason = _scrub_text(refund.reason, personal)
    customer.name = f"Erased customer {customer_id}"
    customer.email = f"erased-{customer_id}@erased.invalid"
    customer.phone = None
    customer.pseudonymized = True

    invoices_kept = session.execute(
        select(func.count(Invoice.id)).where(Invoice.customer_id == customer_id)
    ).scalar_one()
    report = ErasureReport(
        customer_id=customer_id,
        conversations=len(conversation_ids),
        tracker_events=tracker_events,
        vault_tokens=vault_tokens,
        stepup_records=stepup_records,
        secure_links=secure_links,
        messenger_links=messenger_links,
        login_and_session_rows=other_rows,
        payment_methods=payment_methods,
        tickets_scrubbed=len(tickets),
        orders_pseudonymized=len(orders),
        invoices_kept=invoices_kept,
    )
    # 7: identifiers and counts only
    audit.record(session, actor, "privacy.erase", f"customer:{customer_id}", report.as_dict())
    session.flush()
    _schedule_scrub(session)
    return report
