"""Vault entries: encrypted values behind opaque tokens (see :mod:`cartguard.vault`).

The token itself is not stored, only its SHA-256, so a copy of this table cannot be joined
with tokens seen in transcripts without also holding the vault keys. ``customer_id`` has no
foreign key on purpose: erasure deletes vault rows and customer rows in either order.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, LargeBinary, String

from cartguard.shop.models._common import Base
from cartguard.shop.models._common import utcnow


class VaultEntry(Base):
    __tablename__ = "vault_entries"

    id = Column(Integer, primary_key=True)
    token_hash = Column(String(64), nullable=False, unique=True)
    label = Column(String(32), nullable=False)
    key_id = Column(String(40), nullable=False, index=True)
    #: version byte, key id, 96-bit nonce, AES-256-GCM ciphertext and tag
    ciphertext = Column(LargeBinary, nullable=False)
    customer_id = Column(Integer, nullable=True, index=True)
    conversation_id = Column(String(255), nullable=True, index=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=True, index=True)
