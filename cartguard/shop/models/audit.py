"""The append-only audit log table; see :mod:`cartguard.audit` for the hash chain."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, String, Text

from cartguard.shop.models._common import Base
from cartguard.shop.models._common import utcnow


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id = Column(Integer, primary_key=True, autoincrement=True)
    at = Column(DateTime, nullable=False, default=utcnow, index=True)
    actor = Column(String(80), nullable=False)  # "customer:12", "staff:alice", "system"
    action = Column(String(80), nullable=False, index=True)  # e.g. stepup.success
    subject = Column(String(120), nullable=True)  # what it acted on, never personal data
    details = Column(Text, nullable=False, default="{}")  # JSON, no personal data, no codes
    prev_hash = Column(String(64), nullable=False)
    entry_hash = Column(String(64), nullable=False, unique=True)
