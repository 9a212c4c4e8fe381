"""Verifying step-up codes and tracking who is stepped up in which conversation.

Guarantees, all enforced against the database so they hold across restarts and replicas:

* a code is accepted only for the current RFC 6238 step or one step either side;
* each step is accepted at most once per customer: the newest accepted step is stored and
  a code for that step or an older one is refused (a conditional ``UPDATE`` decides, so
  two replicas racing with the same code cannot both win);
* a step-up counts only for the conversation *and* the customer it was done for, for
  ``idle`` seconds after the last sensitive request and never longer than ``absolute``
  seconds after the code was typed (both from ``security.yml``);
* ``max_failures`` consecutive failures lock step-up for ``lockout`` seconds, and no more
  than ``max_failures`` codes are ever compared per lockout window, however many arrive at
  once: each attempt first *reserves* itself with one conditional ``UPDATE`` (``failures <
  max AND not locked``) and the code is compared only when that succeeded (see
  :meth:`StepUpService._reserve_attempt`);
* every failure looks the same to the shopper (one response, :data:`FAILURE_RESPONSE`), while the
  audit log records the real reason, never the code.

The service never commits: it works inside the caller's transaction so a verified step-up
and the audit entry describing it are committed (or rolled back) together.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.orm import Session

from cartguard import audit
from cartguard.keys import load_keys
from cartguard.monitoring import metrics
from cartguard.notify import notices
from cartguard.pii import policy as pii_policy
from cartguard.responses import response_text
from cartguard.shop.locking import begin_write
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.stepup import StepUpChallenge, StepUpEnrolment, StepUpSession
from cartguard.stepup import totp
from cartguard.stepup._sealing import SecretUnavailable, _vault, open_secret
from cartguard.stepup.policy import StepUpRules, get_policy

log = logging.getLogger(__name__)

#: what the shopper is told, by response name (the words are in domain.yml): every kind of
#: failure gets the same one
FAILURE_RESPONSE = "utter_stepup_failed"
VERIFIED_RESPONSE = "utter_stepup_verified"
#: prefix of the vault tokens the channels put where a shopper typed a code
OTP_TOKEN_PREFIX = f"tok_{pii_policy.token_kind('OTP_CODE')}_"
#: how long a code stays expected after the gate asked for it (or sent the step-up link)
CODE_EXPECTED_SECONDS = pii_policy.policy_for("OTP_CODE").expected_for_seconds or 600


class StepUpStatus(enum.Enum):
    FRESH = "fresh"  # verified recently in this conversation: sensitive requests may proceed
    REQUIRED = "required"  # enrolled, but a code is needed first
    NOT_ENROLLED = "not_enrolled"  # no active authenticator: offer enrolment
    LOCKED = "locked"  # too many failures: wait for the lockout to end
    DISABLED = "disabled"  # suspended by staff pending review: sensitive requests refused


@dataclass(frozen=True)
class VerifyOutcome:
    ok: bool
    locked: bool = False
    remaining_attempts: int | None = None

    @property
    def response(self) -> str:
        """The response to send the shopper: one for every kind of failure."""
        return VERIFIED_RESPONSE if self.ok else FAILURE_RESPONSE

    @property
    def message(self) -> str:
        """The same, as text, for pages outside the chat (the secure code form)."""
        return response_text(self.response)


def __getattr__(name: str) -> str:
    # The failure sentence as text, for callers that compare pages with it; its words live in
    # domain.yml (``utter_stepup_failed``), read when asked for, never copied here.
    if name == "GENERIC_FAILURE_MESSAGE":
        return response_text(FAILURE_RESPONSE)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class StepUpService:
    """Step-up decisions for one database session (one request / one action run)."""

    def __init__(
        self,
        session: Session,
        now: Callable[[], datetime] | None = None,
        rules: StepUpRules | None = None,
    ) -> None:
        self._session = session
        self._now = now or utcnow
        self._rules = rules or get_policy().stepup

    # -- reading -------------------------------------------------------------------------

    def status(self, customer_id: int, conversation_id: str) -> StepUpStatus:
        """Where this customer stands in this conversation (see :class:`StepUpStatus`)."""
        if not _valid_subject(customer_id, conversation_id):
            return StepUpStatus.NOT_ENROLLED
        now = self._now()
        # Re-read rather than trust the identity map: staff may have just disabled step-up.
        row = self._session.get(StepUpEnrolment, customer_id, populate_existing=True)
        if row is not None and row.disabled_at is not None:
            return StepUpStatus.DISABLED
        if row is None or row.confirmed_at is None:
            return StepUpStatus.NOT_ENROLLED
        if row.locked_until is not None and row.locked_until > now:
            return StepUpStatus.LOCKED
        if self._fresh_session(customer_id, conversation_id, now) is not None:
            return StepUpStatus.FRESH
        return StepUpStatus.REQUIRED

    def _fresh_session(
        self, customer_id: int, conversation_id: str, now: datetime, *, lock: bool = False
    ) -> StepUpSession | None:
        query = select(StepUpSession).where(
            StepUpSession.conversation_id == conversation_id,
            StepUpSession.customer_id == customer_id,
            StepUpSession.last_active_at > now - timedelta(seconds=self._rules.idle_seconds),
            StepUpSession.verified_at > now - timedelta(seconds=self._rules.absolute_seconds),
        )
        if lock:
            query = query.with_for_update()
        return self._session.execute(query).scalar_one_or_none()

    # -- verifying -----------------------------------------------------------------------

    def verify(
        self, customer_id: int, conversation_id: str, code: str, *, source_ip: str | None = None
    ) -> VerifyOutcome:
        """Check ``code`` (six digits or a ``tok_otp_`` vault token) and record the outcome."""
        if not _valid_subject(customer_id, conversation_id):
            return VerifyOutcome(ok=False)  # anonymous: nobody to verify or to audit
        now = self._now()
        context = {"conversation": conversation_id}
        if source_ip:
            context["ip_hash"] = _pseudonymize(source_ip)
        # Hold the write lock from here to commit (SQLite: BEGIN IMMEDIATE; PostgreSQL: the
        # reservation's row lock), so reserve -> compare -> count runs alone per customer.
        begin_write(self._session)
        attempt = self._reserve_attempt(customer_id, now)
        row = self._session.get(StepUpEnrolment, customer_id, populate_existing=True)
        if attempt is None:
            return self._refuse(row, customer_id, context, now)

        reason, step = self._match(row, code, now)
        if step is not None and self._claim_step(customer_id, step):
            self._start_session(customer_id, conversation_id, now)
            self.withdraw_code_request(conversation_id)
            self._audit(customer_id, "stepup.success", context)
            return VerifyOutcome(ok=True)
        return self._fail(customer_id, conversation_id, attempt, reason or "replayed", context, now)

    def _reserve_attempt(self, customer_id: int, now: datetime) -> int | None:
        """Count this attempt *before* its code is looked at; its number, or None if refused.

        One conditional ``UPDATE``: it succeeds only for an active enrolment that is not
        locked and has fewer than ``max_failures`` failures, so of any number of concurrent
        attempts at most ``max_failures`` get a number. A lockout that has run out starts a
        fresh count. The attempt stays counted as a failure unless the code turns out right.
        """
        expired = and_(
            StepUpEnrolment.locked_until.is_not(None), StepUpEnrolment.locked_until <= now
        )
        result = self._session.execute(
            update(StepUpEnrolment)
            .where(
                StepUpEnrolment.customer_id == customer_id,
                StepUpEnrolment.confirmed_at.is_not(None),
                StepUpEnrolment.disabled_at.is_(None),
                or_(
                    and_(
                        StepUpEnrolment.locked_until.is_(None),
                        StepUpEnrolment.failures < self._rules.max_failures,
                    ),
                    expired,
                ),
            )
            .values(
                failures=case((expired, 1), else_=StepUpEnrolment.failures + 1),
                locked_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            return None
        return self._session.execute(
            select(StepUpEnrolment.failures).where(StepUpEnrolment.customer_id == customer_id)
        ).scalar_one()

    def _refuse(
        self,
        row: StepUpEnrolment | None,
        customer_id: int,
        context: dict[str, str],
        now: datetime,
    ) -> VerifyOutcome:
        """No attempt could be reserved: say why in the audit log; the code is never read."""
        if row is None or row.confirmed_at is None or row.disabled_at is not None:
            reason = "disabled" if row is not None and row.disabled_at else "not_enrolled"
            self._audit(customer_id, "stepup.failure", {**context, "reason": reason})
            return VerifyOutcome(ok=False)
        if row.locked_until is None:
            # failures at the limit without a lockout (the limit was lowered in security.yml):
            # start the lockout now rather than refusing for ever.
            row.locked_until = now + timedelta(seconds=self._rules.lockout_seconds)
            self._session.flush()
        self._audit(customer_id, "stepup.failure", {**context, "reason": "locked"})
        return VerifyOutcome(ok=False, locked=True, remaining_attempts=0)

    def _match(
        self, row: StepUpEnrolment, code: str, now: datetime
    ) -> tuple[str | None, int | None]:
        """Return (failure reason, None) or (None, matched step)."""
        normalized = totp.normalize_code(_resolve_code(code, self._session))
        if normalized is None:
            return "malformed", None
        try:
            secret = open_secret(row.secret_ref, row.customer_id, self._session)
        except SecretUnavailable:
            log.exception("step-up secret unavailable for customer %s", row.customer_id)
            return "secret_unavailable", None
        step = totp.matching_step(secret, normalized, now)
        if step is None:
            return "wrong", None
        if row.last_used_step is not None and step <= row.last_used_step:
            return "replayed", None
        return None, step

    def _claim_step(self, customer_id: int, step: int) -> bool:
        """Atomically record ``step`` as used; False when another request already did."""
        result = self._session.execute(
            update(StepUpEnrolment)
            .where(
                StepUpEnrolment.customer_id == customer_id,
                or_(
                    StepUpEnrolment.last_used_step.is_(None),
                    StepUpEnrolment.last_used_step < step,
                ),
            )
            .values(last_used_step=step, failures=0)
            .execution_options(synchronize_session="fetch")
        )
        return result.rowcount == 1

    def _start_session(self, customer_id: int, conversation_id: str, now: datetime) -> None:
        existing = self._session.get(
            StepUpSession,
            (conversation_id, customer_id),
            with_for_update=True,
            populate_existing=True,
        )
        if existing is None:
            self._session.add(
                StepUpSession(
                    conversation_id=conversation_id,
                    customer_id=customer_id,
                    verified_at=now,
                    last_active_at=now,
                )
            )
        else:  # a new code restarts both windows
            existing.verified_at = now
            existing.last_active_at = now
        self._session.flush()

    def _fail(
        self,
        customer_id: int,
        conversation_id: str,
        attempt: int,
        reason: str,
        context: dict[str, str],
        now: datetime,
    ) -> VerifyOutcome:
        """The reserved attempt failed: it is already counted; lock when it was the last."""
        limit = self._rules.max_failures
        self._audit(customer_id, "stepup.failure", {**context, "reason": reason})
        if attempt >= limit:
            self._session.execute(
                update(StepUpEnrolment)
                .where(StepUpEnrolment.customer_id == customer_id)
                .values(locked_until=now + timedelta(seconds=self._rules.lockout_seconds))
                .execution_options(synchronize_session=False)
            )
            # Whoever is guessing may share a stepped-up conversation: end them all.
            self._session.execute(
                delete(StepUpSession).where(StepUpSession.customer_id == customer_id)
            )
            # the code request stays open until it expires: a shopper who keeps typing codes
            # after the lockout must not see them reach the transcript in clear
            self._audit(
                customer_id,
                "stepup.lockout",
                {"conversation": conversation_id, "minutes": self._rules.lockout_seconds // 60},
            )
            # the owner learns of it out of band: five wrong codes may be someone else guessing
            notices.notify(
                self._session,
                customer_id,
                notices.LOCKOUT,
                minutes=self._rules.lockout_seconds // 60,
            )
            return VerifyOutcome(ok=False, locked=True, remaining_attempts=0)
        return VerifyOutcome(ok=False, locked=False, remaining_attempts=limit - attempt)

    # -- a code is expected (read by the channel edge) -------------------------------------

    def ask_for_code(self, customer_id: int, conversation_id: str) -> None:
        """The gate asked for a code (in the chat, or by sending a step-up link): until it is
        verified, cancelled, locked out or ``CODE_EXPECTED_SECONDS`` have passed, the channel
        edge tokenizes any six-digit number typed in this conversation."""
        if not _valid_subject(customer_id, conversation_id):
            return
        now = self._now()
        expires = now + timedelta(seconds=CODE_EXPECTED_SECONDS)
        row = self._session.get(StepUpChallenge, conversation_id, populate_existing=True)
        if row is None:
            self._session.add(
                StepUpChallenge(
                    conversation_id=conversation_id,
                    customer_id=customer_id,
                    asked_at=now,
                    expires_at=expires,
                )
            )
        else:
            row.customer_id, row.asked_at, row.expires_at = customer_id, now, expires
        self._session.flush()

    def withdraw_code_request(self, conversation_id: str) -> None:
        """No code is expected here any more (verified, cancelled, conversation ended)."""
        self._session.execute(
            delete(StepUpChallenge).where(StepUpChallenge.conversation_id == conversation_id)
        )

    # -- session lifetime ----------------------------------------------------------------

    def touch(self, customer_id: int, conversation_id: str) -> None:
        """A sensitive request was served: restart the idle window (never the absolute one)."""
        now = self._now()
        current = self._fresh_session(customer_id, conversation_id, now, lock=True)
        if current is not None:
            current.last_active_at = now
            self._session.flush()

    def end(self, conversation_id: str) -> None:
        """Forget every step-up of this conversation (logout, restart, erasure)."""
        self._session.execute(
            delete(StepUpSession).where(StepUpSession.conversation_id == conversation_id)
        )
        self.withdraw_code_request(conversation_id)

    def purge_expired(self) -> int:
        """Delete step-up sessions that can no longer count; returns how many went."""
        now = self._now()
        result = self._session.execute(
            delete(StepUpSession).where(
                or_(
                    StepUpSession.last_active_at
                    <= now - timedelta(seconds=self._rules.idle_seconds),
                    StepUpSession.verified_at
                    <= now - timedelta(seconds=self._rules.absolute_seconds),
                )
            )
        )
        self._session.execute(delete(StepUpChallenge).where(StepUpChallenge.expires_at <= now))
        return result.rowcount or 0

    def _audit(self, customer_id: int, action: str, details: dict[str, object]) -> None:
        audit.record(
            self._session, f"customer:{customer_id}", action, f"customer:{customer_id}", details
        )
        metrics.record_stepup(action)


def code_pending(session: Session, conversation_id: str, now: datetime | None = None) -> bool:
    """Is a step-up code expected in this conversation right now? (The channel edge asks.)"""
    if not isinstance(conversation_id, str) or not 0 < len(conversation_id) <= 64:
        return False
    found = session.execute(
        select(StepUpChallenge.conversation_id).where(
            StepUpChallenge.conversation_id == conversation_id,
            StepUpChallenge.expires_at > (now or utcnow()),
        )
    ).first()
    return found is not None


def _valid_subject(customer_id: object, conversation_id: object) -> bool:
    """Only an identified customer in a named conversation can ever be stepped up."""
    return (
        isinstance(customer_id, int)
        and not isinstance(customer_id, bool)
        and isinstance(conversation_id, str)
        and 0 < len(conversation_id) <= 64
    )


def _resolve_code(code: object, session: Session) -> object:
    """Turn a ``tok_otp_`` vault token back into what the shopper typed; else pass through.

    Any vault trouble yields None, which the caller treats like a wrong code: a broken or
    forged token must never be a way around the failure counter.
    """
    if not isinstance(code, str) or not code.startswith(OTP_TOKEN_PREFIX):
        return code
    try:
        return _vault().detokenize(code, session=session)
    except Exception:  # unknown, expired or tampered tokens all mean "no code"
        return None


def _pseudonymize(source_ip: str) -> str:
    """A keyed hash of the IP: lets staff correlate attempts without storing the address."""
    key = load_keys().raw("audit_key")
    return hmac.new(key, source_ip.encode(), hashlib.sha256).hexdigest()[:16]
