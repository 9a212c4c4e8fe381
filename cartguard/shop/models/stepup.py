"""Step-up (TOTP) state: one enrolment per customer and one step-up session per conversation.

Everything the verifier needs to decide lives here, server-side, so a decision survives a
restart and is the same on every replica. The TOTP secret itself is never stored in clear:
``secret_ref`` holds a vault token (see :mod:`cartguard.stepup._sealing`).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Integer, String

from cartguard.shop.models._common import Base, utcnow


class StepUpEnrolment(Base):
    """A customer's authenticator: pending until a first code confirms it, then active.

    ``last_used_step`` is the RFC 6238 time step of the newest accepted code; a code for that
    step or an older one is refused, which is what makes each code usable once. ``failures``
    counts consecutive failed codes across all of the customer's conversations.
    """

    __tablename__ = "stepup_enrolments"

    customer_id = Column(Integer, ForeignKey("customers.id"), primary_key=True)
    secret_ref = Column(String(255), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    confirmed_at = Column(DateTime, nullable=True)  # None = enrolment not finished yet
    disabled_at = Column(DateTime, nullable=True)  # set by staff pending review
    last_used_step = Column(BigInteger, nullable=True)
    failures = Column(Integer, nullable=False, default=0)
    locked_until = Column(DateTime, nullable=True)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class StepUpSession(Base):
    """A verified step-up, valid only for this conversation *and* this customer."""

    __tablename__ = "stepup_sessions"

    conversation_id = Column(String(64), primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), primary_key=True, index=True)
    verified_at = Column(DateTime, nullable=False)  # start of the absolute window
    last_active_at = Column(DateTime, nullable=False, index=True)  # start of the idle window


class StepUpChallenge(Base):
    """A step-up code is expected in this conversation (asked in the chat, or a link sent).

    Written by the step-up gate, ended by a verified code, a cancel or the end of the
    conversation, and good for a fixed time (:mod:`cartguard.pii.policy`, ``OTP_CODE``). The
    channel edge reads it to know that a bare six-digit number in this conversation is a code
    to tokenize; it learns this from the database, never from the client.
    """

    __tablename__ = "stepup_challenges"

    conversation_id = Column(String(64), primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    asked_at = Column(DateTime, nullable=False)
    expires_at = Column(DateTime, nullable=False, index=True)
