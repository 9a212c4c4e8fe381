"""Operational switches shared by every replica (kept in the database, not in a local file)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, String

from cartguard.shop.models._common import Base
from cartguard.shop.models._common import utcnow


class OpsFlag(Base):
    __tablename__ = "ops_flags"

    name = Column(String(40), primary_key=True)  # e.g. "maintenance"
    value = Column(String(200), nullable=False)
    set_by = Column(String(80), nullable=False)
    updated_at = Column(DateTime, nullable=False, default=utcnow)
