"""Messenger account linking: a Messenger user proves which shop customer they are.

Messenger is public and says nothing about who someone is at the shop, so the link is made
on our secure form: :func:`start_linking` issues a single-use, ten-minute link bound to the
PSID, which the bot sends as Messenger's log-in button. Messenger opens it with an
``account_linking_token`` made for whoever tapped the button; the page asks the Graph API whose
it is and refuses anyone but the PSID the link was made for (:func:`opened_by`), so a link
forwarded to, or phished from, another Messenger user links nobody. The shopper then signs in
to the shop on that page (password, and the authenticator code when enrolled) and the web
service calls :func:`complete_linking`. From then on the Messenger channel mints a five-minute
login token for that customer into every message, and the actions treat the shopper as signed
in while the link exists (checked on every turn).

Each PSID maps to one customer. Linking and unlinking are audit-logged (identifiers only).
A shopper unlinks from Messenger ("unlink my account") or from the shop's account page; staff
list and revoke links with ``cartguard channels messenger-links`` / ``messenger-unlink``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cartguard import audit
from cartguard.keys import load_keys
from cartguard.links import Link, LinkForbidden, issue_link
from cartguard.shop.conversations import note_messenger_sender
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.channels import MessengerLink
from cartguard.stepup.service import StepUpService

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


OPENED_ELSEWHERE = (
    "This sign-in link belongs to another Messenger conversation, so it can't link yours. "
    "Please ask the assistant in your own Messenger chat, and tap the Sign in button it sends."
)
NOT_FROM_MESSENGER = (
    "Please open this link with the Sign in button in the Messenger app: Messenger tells us "
    "which conversation to link. If you copied the link, go back to Messenger and tap the button."
)


def link_psid(link: Link) -> str:
    psid = str(link.payload.get("psid") or "")
    if link.purpose != PURPOSE or not psid or psid != link.conversation_id:
        raise LinkForbidden("This link is missing its Messenger details; ask for a new one.")
    return psid


def opened_by(link: Link, tapper_psid: str | None) -> str:
    """A proof that the Messenger user the link was made for opened it, else LinkForbidden.

    ``tapper_psid`` is what the Graph API said about the page's ``account_linking_token``
    (``None``: no token, or one the Graph API did not know). The proof (an HMAC with the link
    key, bound to this link and PSID) rides in the form, so the submission needs no second
    lookup and cannot be made for another link or PSID.
    """
    psid = link_psid(link)
    if tapper_psid is None:
        raise LinkForbidden(NOT_FROM_MESSENGER)
    if not hmac.compare_digest(tapper_psid.encode(), psid.encode()):
        raise LinkForbidden(OPENED_ELSEWHERE)
    return _opener_mac(link.id, psid)


def check_opener(link: Link, proof: object) -> bool:
    """True when ``proof`` came from :func:`opened_by` for this very link."""
    if not isinstance(proof, str) or len(proof) != 64:
        return False
    return hmac.compare_digest(proof, _opener_mac(link.id, link_psid(link)))


def _opener_mac(link_id: int, psid: str) -> str:
    message = f"messenger-opener|{link_id}|{psid}".encode()
    return hmac.new(load_keys().raw("link_key"), message, hashlib.sha256).hexdigest()


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
    psids = session.execute(
        select(MessengerLink.psid).where(MessengerLink.customer_id == customer_id)
    ).scalars()
    for psid in list(psids):
        StepUpService(session).end(psid)  # a later re-link starts without a step-up
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


def unlink_psid(session: Session, psid: str, actor: str) -> int | None:
    """Remove the link of one Messenger user; returns the customer it pointed to, or ``None``.

    This is what the shopper's "unlink my account" in Messenger does: other Messenger users
    linked to the same customer keep their link.
    """
    row = session.get(MessengerLink, psid)
    if row is None:
        return None
    customer_id = row.customer_id
    session.delete(row)
    session.flush()
    StepUpService(session).end(psid)  # a later re-link starts without a step-up
    audit.record(
        session,
        actor,
        "messenger.unlink",
        f"customer:{customer_id}",
        {"links": 1, "channel": "facebook"},
    )
    return customer_id


@dataclass(frozen=True)
class LinkInfo:
    """One Messenger link, as staff see it (identifiers only)."""

    psid: str
    customer_id: int
    linked_at: datetime


def list_links(session: Session, customer_id: int | None = None) -> list[LinkInfo]:
    """Every Messenger link (of one customer, if given), newest first."""
    query = select(MessengerLink).order_by(MessengerLink.linked_at.desc(), MessengerLink.psid)
    if customer_id is not None:
        query = query.where(MessengerLink.customer_id == customer_id)
    return [
        LinkInfo(row.psid, row.customer_id, row.linked_at)
        for row in session.execute(query).scalars()
    ]
