"""State the hardened channels keep: webchat session claims, Messenger links, seen webhooks.

Who owns a conversation is recorded once, in ``conversations`` (``ConversationOwner``); these
tables hold only what the channels need on top of that:

* ``webchat_sessions`` remembers whether an issued webchat session has been *claimed* yet.
  A fresh session is claimed by its first message (by the signed-in customer or as anonymous)
  and can never change hands afterwards.
* ``messenger_links`` maps a Messenger page-scoped id (PSID) to the customer who proved, on
  our secure form, that the Messenger account is theirs. One PSID, one customer.
* ``messenger_seen_events`` makes webhook handling idempotent: Facebook re-delivers events,
  and an attacker can replay a captured, correctly signed body.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Integer, String

from cartguard.shop.models._common import Base
from cartguard.shop.models._common import utcnow


class WebchatSession(Base):
    __tablename__ = "webchat_sessions"

    conversation_id = Column(String(64), primary_key=True)  # Rasa sender_id (public half)
    #: None until the first message; then "anonymous" or "customer" (customer id is in
    #: ``conversations.customer_id``) and never changed again.
    claimed_as = Column(String(16), nullable=True)
    issued_at = Column(DateTime, nullable=False, default=utcnow)
    claimed_at = Column(DateTime, nullable=True)


class MessengerLink(Base):
    __tablename__ = "messenger_links"

    psid = Column(String(64), primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    linked_at = Column(DateTime, nullable=False, default=utcnow)


class MessengerSeenEvent(Base):
    __tablename__ = "messenger_seen_events"

    #: SHA-256 of the event's identity (message ``mid``, or sender + time + payload)
    event_key = Column(String(64), primary_key=True)
    seen_at = Column(DateTime, nullable=False, default=utcnow, index=True)
