"""Tables of the monitoring area: security events, channel signals and the blocklist.

None of them holds personal data in clear. Client addresses, Messenger sender ids and
conversation ids appear only as keyed pseudonyms (:func:`cartguard.monitoring.signals.pseudonym`,
the same construction step-up uses for ``ip_hash`` in the audit log), so an operator can
correlate an event with a block, but the tables reveal no one if copied.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, String, Text, UniqueConstraint

from cartguard.shop.models._common import Base
from cartguard.shop.models._common import utcnow


class SecurityEvent(Base):
    """One incident raised by an anomaly rule; raised once per rule, subject and window."""

    __tablename__ = "security_events"

    id = Column(Integer, primary_key=True, autoincrement=True)
    rule = Column(String(60), nullable=False, index=True)  # e.g. "credential_stuffing"
    subject = Column(String(120), nullable=False)  # "ip:<pseudonym>", "customer:12", "shop"
    severity = Column(String(16), nullable=False, default="warning")  # warning / critical
    count = Column(Integer, nullable=False)  # the largest count seen while it was open
    threshold = Column(Integer, nullable=False)
    summary = Column(Text, nullable=False)  # one sentence for the operator, no personal data
    first_seen_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    last_seen_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    status = Column(String(16), nullable=False, default="open")  # open / acknowledged


class SecuritySignal(Base):
    """Counts of suspicious channel events per minute, written by processes without /metrics.

    The channels run inside Rasa; counting here (aggregated in memory, flushed every few
    seconds) lets the rules in the web service or cron see them, and keeps one flood from
    turning into one database write per request.
    """

    __tablename__ = "security_signals"
    __table_args__ = (UniqueConstraint("kind", "subject", "bucket", name="uq_signal_bucket"),)

    id = Column(Integer, primary_key=True, autoincrement=True)
    kind = Column(String(40), nullable=False)  # e.g. "auth.invalid_token"
    subject = Column(String(80), nullable=False)  # "ip:<pseudonym>", "conversation:<...>", "-"
    bucket = Column(DateTime, nullable=False, index=True)  # start of the minute (UTC)
    count = Column(Integer, nullable=False, default=0)


class BlockedSource(Base):
    """A client address or Messenger sender the channels refuse (by pseudonym only)."""

    __tablename__ = "security_blocks"
    __table_args__ = (UniqueConstraint("kind", "pseudonym", name="uq_block_kind_pseudonym"),)

    id = Column(Integer, primary_key=True, autoincrement=True)
    kind = Column(String(16), nullable=False)  # "ip" or "sender"
    pseudonym = Column(String(32), nullable=False)
    reason = Column(String(200), nullable=False, default="")
    created_by = Column(String(80), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=True)  # None: until unblocked
