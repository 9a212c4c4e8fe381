"""Messenger account linking: a Messenger user proves which shop customer they are.

Messenger is public and says nothing about who someone is at the shop, so the link is made
on our secure form: :func:`start_linking` issues a single-use, ten-minute link bound to the
PSID; the shopper opens it, signs in to the shop there, and the web service calls
:func:`complete_linking`. From then on the Messenger channel mints a five-minute login token
for that customer into every message, and the actions treat the shopper as signed in.

Each PSID maps to one customer. Linking and unlinking are audit-logged (identifiers only).
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cartguard import audit
from cartguard.links import issue_link
from cartguard.shop.conversations import note_messenger_sender
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.channels import MessengerLink

PURPOSE = "messenger_link"


def start_linking(session: Session, psid: str) -> str:
    """The URL of a secure form that links this Messenger user to a shop account."""
    issued = issue_link(
        session,
        conversation_id=psid,
        customer_id=None,
        purpose=PURPOSE,
        channel="facebook",
        payload={"psid": psid},
    )
    return issued.url


def complete_linking(session: Session, customer_id: int, psid: str) -> None:
    """Link ``psid`` to ``customer_id`` (the shopper proved both on the secure form).

    Re-linking a PSID replaces its previous customer; the caller commits.
    """
    if not isinstance(customer_id, int) or not isinstance(psid, str) or not psid:
        raise ValueError("complete_linking needs a customer id and a Messenger PSID")
    row = session.get(MessengerLink, psid)
    previous = row.customer_id if row else None
    if row is None:
        session.add(MessengerLink(psid=psid, customer_id=customer_id, linked_at=utcnow()))
    else:
        row.customer_id = customer_id
        row.linked_at = utcnow()
    note_messenger_sender(session, psid, customer_id)
    details = {"channel": "facebook"}
    if previous is not None and previous != customer_id:
        details["replaced_customer"] = str(previous)
    audit.record(session, "system:messenger", "messenger.link", f"customer:{customer_id}", details)


def linked_customer(session: Session, psid: str) -> int | None:
    """The customer this Messenger user linked, or ``None``."""
    return session.execute(
        select(MessengerLink.customer_id).where(MessengerLink.psid == psid)
    ).scalar_one_or_none()


def unlink(session: Session, customer_id: int, actor: str = "system:messenger") -> int:
    """Remove every Messenger link of ``customer_id``; returns how many were removed.

    ``actor`` names who asked (the customer, a staff member) for the audit log.
    """
    result = session.execute(delete(MessengerLink).where(MessengerLink.customer_id == customer_id))
    if result.rowcount:
        audit.record(
            session,
            actor,
            "messenger.unlink",
            f"customer:{customer_id}",
            {"links": result.rowcount},
        )
    return result.rowcount
