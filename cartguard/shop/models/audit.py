"""The append-only audit log and its head row; see :mod:`cartguard.audit` for the hash chain.

``seq`` numbers entries 1, 2, 3... with no gaps: it is taken from the single ``audit_head`` row
inside the serialized append (never from an autoincrement, which a rolled-back transaction
would skip), so a missing number always means a removed entry. ``id`` is only a row key.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, String, Text, event

from cartguard.shop.models._common import Base, utcnow

#: the "previous hash" of the first entry, and the head of an empty log
GENESIS = "0" * 64
HEAD_ROW_ID = 1


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id = Column(Integer, primary_key=True, autoincrement=True)
    seq = Column(BigInteger, nullable=False, unique=True)  # 1, 2, 3... inside the HMAC
    at = Column(DateTime, nullable=False, default=utcnow, index=True)
    actor = Column(String(80), nullable=False)  # "customer:12", "staff:alice", "system"
    action = Column(String(80), nullable=False, index=True)  # e.g. stepup.success
    subject = Column(String(120), nullable=True)  # what it acted on, never personal data
    details = Column(Text, nullable=False, default="{}")  # JSON, no personal data, no codes
    prev_hash = Column(String(64), nullable=False)
    entry_hash = Column(String(64), nullable=False, unique=True)


class AuditHead(Base):
    """One row: the newest entry's ``seq`` and hash. Every append locks and advances it.

    ``legacy_until`` is the last entry written before sequence numbers existed (their HMAC
    does not cover ``seq``; migration 0003 numbered them in id order); 0 for newer logs.
    """

    __tablename__ = "audit_head"

    id = Column(Integer, primary_key=True)  # always HEAD_ROW_ID
    seq = Column(BigInteger, nullable=False)
    entry_hash = Column(String(64), nullable=False)
    legacy_until = Column(BigInteger, nullable=False, default=0)


@event.listens_for(AuditHead.__table__, "after_create")
def _start_empty(target, connection, **_kw) -> None:  # noqa: ANN001 - SQLAlchemy event API
    """A new log starts at seq 0 with the genesis hash, so no append ever has to create it."""
    connection.execute(
        target.insert().values(id=HEAD_ROW_ID, seq=0, entry_hash=GENESIS, legacy_until=0)
    )
