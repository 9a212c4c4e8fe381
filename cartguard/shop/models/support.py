"""Support tickets created by hand-off and complaints; they carry only redacted transcripts."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Integer, String, Text

from cartguard.shop.models._common import Base
from cartguard.shop.models._common import utcnow


class SupportTicket(Base):
    __tablename__ = "support_tickets"

    id = Column(String(16), primary_key=True)  # e.g. TK-20931
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=True, index=True)
    conversation_id = Column(String(64), nullable=True, index=True)
    kind = Column(String(20), nullable=False)  # handoff / complaint
    status = Column(String(20), nullable=False, default="open")  # open/answered/closed
    summary = Column(Text, nullable=False)
    transcript = Column(Text, nullable=True)  # redacted
    reply = Column(Text, nullable=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow)
