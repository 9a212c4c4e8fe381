"""Which customer a conversation belongs to, on which channel, and its consent state.

Channels write a row when they issue a session; privacy tools use it to find a customer's
transcripts for export and erasure; retention uses ``last_seen_at``.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String

from cartguard.shop.models._common import Base
from cartguard.shop.models._common import utcnow


class ConversationOwner(Base):
    __tablename__ = "conversations"

    conversation_id = Column(String(64), primary_key=True)  # Rasa sender_id
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=True, index=True)
    channel = Column(String(20), nullable=False)  # socketio / facebook / rest
    created_at = Column(DateTime, nullable=False, default=utcnow)
    last_seen_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    #: None = not asked yet, True = shopper agreed to keep the transcript, False = declined
    transcript_consent = Column(Boolean, nullable=True)
