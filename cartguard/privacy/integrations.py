"""The other Cartguard areas that erasure and retention must reach, in one place.

Erasure and retention reach the vault, step-up state, secure links, the Messenger account link
and the per-conversation rows of the channels and the web service. Each is imported directly:
every area is part of the package, and one that fails to import stops the caller instead of
leaving personal data behind unnoticed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from cartguard import account_links, links
from cartguard.pii import redact
from cartguard.shop.models.channels import WebchatSession
from cartguard.shop.models.links import SecureLink
from cartguard.shop.models.offers import OfferedPayload
from cartguard.shop.models.stepup import StepUpSession
from cartguard.shop.models.web import OutboxNotification, WebLogin, WebSession
from cartguard.stepup.enrolment import remove_enrolment
from cartguard.stepup.service import StepUpService
from cartguard.vault import get_vault


def redact_text(text: str | None) -> str | None:
    """Redact text shown to staff or exported."""
    return None if text is None else redact(text).text


# --- vault --------------------------------------------------------------------------------


def vault_forget_customer(customer_id: int, session: Session | None = None) -> int:
    """Delete the customer's vault entries, inside ``session``'s transaction when given."""
    return int(get_vault().forget_customer(customer_id, session=session))


def vault_forget_conversation(conversation_id: str, session: Session | None = None) -> int:
    return int(get_vault().forget_conversation(conversation_id, session=session))


def vault_purge_expired() -> int:
    return int(get_vault().purge_expired())


# --- step-up ------------------------------------------------------------------------------


def stepup_forget_customer(session: Session, customer_id: int) -> int:
    """Remove the customer's TOTP enrolment and every step-up session they hold."""
    removed = int(bool(remove_enrolment(session, customer_id)))
    removed += (
        session.execute(
            delete(StepUpSession).where(StepUpSession.customer_id == customer_id)
        ).rowcount
        or 0
    )
    return removed


def stepup_end_conversation(session: Session, conversation_id: str) -> None:
    StepUpService(session).end(conversation_id)


def stepup_purge_expired(session: Session, now: datetime) -> int:
    return int(StepUpService(session, now=lambda: now).purge_expired())


# --- secure links and Messenger account links ---------------------------------------------


def links_purge_expired(session: Session, now: datetime) -> int:
    return int(links.purge_expired_links(session, now=now))


def links_forget_customer(session: Session, customer_id: int) -> int:
    """Drop the customer's secure links (open or used): they only point at old conversations."""
    return (
        session.execute(delete(SecureLink).where(SecureLink.customer_id == customer_id)).rowcount
        or 0
    )


def messenger_unlink(session: Session, customer_id: int) -> int:
    return int(account_links.unlink(session, customer_id) or 0)


# --- per-customer and per-conversation rows of other areas ---------------------------------

#: Rows that exist only because of one customer; erasure deletes them. The web logins hold
#: the customer's e-mail address; sessions are their digests.
CUSTOMER_ROWS = ((WebLogin, "customer_id"), (WebSession, "customer_id"))
#: Rows that exist only because of one conversation; erasure and retention delete them.
CONVERSATION_ROWS = (
    (WebchatSession, "conversation_id"),
    (OutboxNotification, "conversation_id"),
    (StepUpSession, "conversation_id"),
    (SecureLink, "conversation_id"),
    (OfferedPayload, "conversation_id"),  # digests of the buttons the bot offered there
)


def _delete_rows(session: Session, model: type, column: str, values: list) -> int:
    if not values:
        return 0
    return session.execute(delete(model).where(getattr(model, column).in_(values))).rowcount or 0


def forget_customer_rows(session: Session, customer_id: int) -> int:
    return sum(_delete_rows(session, m, c, [customer_id]) for m, c in CUSTOMER_ROWS)


def forget_conversation_rows(session: Session, conversation_ids: list[str]) -> int:
    removed = 0
    for start in range(0, len(conversation_ids), 500):
        chunk = conversation_ids[start : start + 500]
        removed += sum(_delete_rows(session, m, c, chunk) for m, c in CONVERSATION_ROWS)
    return removed
