"""Single-use links to secure forms; only a keyed hash of each token is stored.

A database dump therefore cannot be turned into working links, and the token (the only
thing in the URL) carries no personal data.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, String, Text

from cartguard.shop.models._common import Base
from cartguard.shop.models._common import utcnow


class SecureLink(Base):
    __tablename__ = "secure_links"

    id = Column(Integer, primary_key=True, autoincrement=True)
    token_hash = Column(String(64), nullable=False, unique=True)  # HMAC-SHA256 hex
    conversation_id = Column(String(64), nullable=False, index=True)
    customer_id = Column(Integer, nullable=True, index=True)
    purpose = Column(String(20), nullable=False)
    channel = Column(String(20), nullable=False)
    payload = Column(Text, nullable=False, default="{}")  # non-personal JSON
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False, index=True)
    used_at = Column(DateTime, nullable=True)
