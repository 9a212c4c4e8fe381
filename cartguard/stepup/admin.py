"""Staff operations on one customer's step-up, each recorded in the audit log.

``disable`` is the incident-response switch: while it is set, step-up never succeeds and
the dialogue refuses every sensitive intent for that customer, whatever code is typed.
``unlock`` clears a lockout *and* lifts a disable once the review is done; ``reset`` removes
the enrolment so the shopper can set up a new phone; ``forget_customer`` is for erasure.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.orm import Session

from cartguard import audit
from cartguard.notify import notices
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.stepup import StepUpEnrolment, StepUpSession
from cartguard.stepup.enrolment import remove_enrolment


class NotEnrolled(LookupError):
    """The customer has no step-up enrolment to act on."""


@dataclass(frozen=True)
class StepUpState:
    """A staff view of one enrolment: state only, never the secret."""

    customer_id: int
    enrolled: bool
    disabled: bool
    failures: int
    locked_until: str | None


def _enrolment(session: Session, customer_id: int) -> StepUpEnrolment:
    row = session.get(StepUpEnrolment, customer_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise NotEnrolled(f"customer {customer_id} has no step-up enrolment")
    return row


def _drop_sessions(session: Session, customer_id: int) -> int:
    result = session.execute(delete(StepUpSession).where(StepUpSession.customer_id == customer_id))
    return result.rowcount or 0


def describe(session: Session, customer_id: int) -> StepUpState:
    row = session.get(StepUpEnrolment, customer_id, populate_existing=True)
    if row is None:
        raise NotEnrolled(f"customer {customer_id} has no step-up enrolment")
    return StepUpState(
        customer_id=customer_id,
        enrolled=row.confirmed_at is not None,
        disabled=row.disabled_at is not None,
        failures=row.failures,
        locked_until=row.locked_until.isoformat(timespec="seconds") if row.locked_until else None,
    )


def disable(session: Session, customer_id: int, *, actor: str) -> None:
    """Suspend step-up pending review and end every stepped-up conversation of the customer."""
    row = _enrolment(session, customer_id)
    row.disabled_at = row.disabled_at or utcnow()
    ended = _drop_sessions(session, customer_id)
    session.flush()
    audit.record(
        session, actor, "stepup.disabled", f"customer:{customer_id}", {"sessions_ended": ended}
    )


def unlock(session: Session, customer_id: int, *, actor: str) -> None:
    """Clear failures and any lockout, and lift a disable (the review is over)."""
    row = _enrolment(session, customer_id)
    was = {"was_locked": row.locked_until is not None, "was_disabled": row.disabled_at is not None}
    row.failures = 0
    row.locked_until = None
    row.disabled_at = None
    session.flush()
    audit.record(session, actor, "stepup.unlocked", f"customer:{customer_id}", was)


def reset(session: Session, customer_id: int, *, actor: str) -> None:
    """Remove the enrolment (lost phone): the shopper must enrol a new authenticator.

    That new enrolment is confirmed by e-mail like a first one (:mod:`.enrolment`), and the
    address on file hears of the reset once it commits.
    """
    row = _enrolment(session, customer_id)
    session.delete(row)
    ended = _drop_sessions(session, customer_id)
    session.flush()
    audit.record(
        session, actor, "stepup.reset", f"customer:{customer_id}", {"sessions_ended": ended}
    )
    notices.notify(session, customer_id, notices.RESET)


def forget_customer(session: Session, customer_id: int) -> int:
    """Erase all step-up data of a customer (privacy erasure); returns rows removed."""
    return _drop_sessions(session, customer_id) + int(remove_enrolment(session, customer_id))
