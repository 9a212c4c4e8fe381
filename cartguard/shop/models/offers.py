"""Button and quick-reply payloads the bot offered in a conversation (the channels' intent guard).

A shopper may not type ``/EXTERNAL_...`` or ``/intent{"entity": ...}``: Rasa would take such
text as that intent with those entities. Tapping a button the bot itself offered sends exactly
such text, so the channels remember what they offered, here, in the shared database: any
replica can then accept the tap, and a Messenger button still works days later. Only a SHA-256
digest of the payload is kept, never the payload (it may name an order).
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, String

from cartguard.shop.models._common import Base, utcnow


class OfferedPayload(Base):
    __tablename__ = "offered_payloads"

    conversation_id = Column(String(64), primary_key=True)
    payload_digest = Column(String(64), primary_key=True)  # SHA-256 hex of the payload
    offered_at = Column(DateTime, nullable=False, default=utcnow, index=True)
