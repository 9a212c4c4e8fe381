"""Tables of the web service: demo shop logins, browser sessions, and the notification outbox.

Passwords are stored only as argon2 hashes and session ids only as SHA-256 digests, so a copy
of the database lets nobody log in. The outbox holds what the web service still has to tell a
conversation (an intent name and identifiers such as an order id or the last 4 digits of a
card, never a card number, code or address) until Rasa has acknowledged it.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Integer, String, Text

from cartguard.shop.models._common import Base
from cartguard.shop.models._common import utcnow


class WebLogin(Base):
    """A demo shop login: the e-mail a customer signs in with and an argon2 password hash."""

    __tablename__ = "web_logins"

    customer_id = Column(Integer, ForeignKey("customers.id"), primary_key=True)
    email = Column(String(320), nullable=False, unique=True)
    password_hash = Column(String(200), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    last_login_at = Column(DateTime, nullable=True)


class WebSession(Base):
    """A logged-in browser; the cookie carries the id, the table only its digest."""

    __tablename__ = "web_sessions"

    id_hash = Column(String(64), primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)
    revoked_at = Column(DateTime, nullable=True)


class OutboxNotification(Base):
    """One result to report to a conversation through Rasa's ``trigger_intent``."""

    __tablename__ = "web_outbox"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(64), nullable=False, index=True)
    intent = Column(String(80), nullable=False)
    entities = Column(Text, nullable=False, default="{}")  # JSON object
    created_at = Column(DateTime, nullable=False, default=utcnow)
    attempts = Column(Integer, nullable=False, default=0)
    last_error = Column(String(300), nullable=True)
    #: a deliverer owns the row until then, so two processes never send the same result twice
    claimed_until = Column(DateTime, nullable=True)
    delivered_at = Column(DateTime, nullable=True, index=True)
