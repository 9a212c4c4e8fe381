"""Enrolling a customer's authenticator app.

An enrolment starts *pending*: the secret is stored (encrypted) and shown once, as a QR code
and as text, on the secure enrolment page. It becomes *active* only when the shopper types a
first valid code, which proves the app holds the secret. An active enrolment is never
silently replaced: a lost phone goes through staff (``cartguard stepup reset``), because
letting anyone with a chat session swap the authenticator would defeat step-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from cartguard import audit
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.stepup import StepUpEnrolment
from cartguard.stepup import totp
from cartguard.stepup._sealing import SecretUnavailable, open_secret, seal_secret


class EnrolmentError(RuntimeError):
    """The enrolment cannot be started (already active, or disabled pending review)."""


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows once; never logged, never stored in clear."""

    secret: str
    provisioning_uri: str
    qr_png_data_uri: str

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return "Enrolment(secret=<hidden>)"


def _row(session: Session, customer_id: int, *, lock: bool = False) -> StepUpEnrolment | None:
    if lock:
        return session.get(
            StepUpEnrolment, customer_id, with_for_update=True, populate_existing=True
        )
    return session.get(StepUpEnrolment, customer_id)


def _actor(customer_id: int) -> str:
    return f"customer:{customer_id}"


def begin_enrolment(session: Session, customer_id: int) -> Enrolment:
    """Create (or restart) a pending enrolment and return the secret to show.

    Raises :class:`EnrolmentError` when the customer already has an active or a disabled
    enrolment.
    """
    row = _row(session, customer_id, lock=True)
    if row is not None and row.disabled_at is not None:
        raise EnrolmentError(
            "step-up for this account is suspended pending a review by our support team"
        )
    if row is not None and row.confirmed_at is not None:
        raise EnrolmentError("this account already has an authenticator app set up")
    secret = totp.new_secret()
    ref = seal_secret(secret, customer_id, session, pending=True)
    if row is None:
        session.add(StepUpEnrolment(customer_id=customer_id, secret_ref=ref))
    else:
        row.secret_ref = ref
        row.last_used_step = None
        row.failures = 0
        row.locked_until = None
    session.flush()
    audit.record(
        session, _actor(customer_id), "stepup.enrolment_started", f"customer:{customer_id}"
    )
    uri = totp.provisioning_uri(secret, customer_id)
    return Enrolment(secret=secret, provisioning_uri=uri, qr_png_data_uri=totp.qr_png_data_uri(uri))


def confirm_enrolment(
    session: Session, customer_id: int, code: str, *, now: datetime | None = None
) -> bool:
    """Activate a pending enrolment with a first valid code; True when it is now active.

    The confirming code's time step is recorded as used, so the same code cannot then be
    replayed to pass a step-up. A wrong code leaves the enrolment pending.
    """
    now = now or utcnow()
    row = _row(session, customer_id, lock=True)
    normalized = totp.normalize_code(code)
    if row is None or row.confirmed_at is not None or row.disabled_at is not None:
        audit.record(
            session, _actor(customer_id), "stepup.enrolment_failed", details={"reason": "state"}
        )
        return False
    try:
        secret = open_secret(row.secret_ref, customer_id, session)
    except SecretUnavailable:  # the pending secret expired: the page must start again
        audit.record(
            session, _actor(customer_id), "stepup.enrolment_failed", details={"reason": "expired"}
        )
        return False
    step = totp.matching_step(secret, normalized, now) if normalized is not None else None
    if step is None:
        audit.record(
            session, _actor(customer_id), "stepup.enrolment_failed", details={"reason": "code"}
        )
        return False
    # Re-sealed for the long term: the pending vault entry simply expires.
    lasting_ref = seal_secret(secret, customer_id, session, pending=False)
    result = session.execute(
        update(StepUpEnrolment)
        .where(
            StepUpEnrolment.customer_id == customer_id,
            StepUpEnrolment.confirmed_at.is_(None),
            StepUpEnrolment.secret_ref == row.secret_ref,
        )
        .values(
            secret_ref=lasting_ref,
            confirmed_at=now,
            last_used_step=step,
            failures=0,
            locked_until=None,
        )
        .execution_options(synchronize_session="fetch")
    )
    if result.rowcount != 1:  # confirmed or restarted by another request meanwhile
        return False
    audit.record(session, _actor(customer_id), "stepup.enrolled", f"customer:{customer_id}")
    return True


def is_enrolled(session: Session, customer_id: int) -> bool:
    """True when the customer has a confirmed, not disabled, authenticator."""
    row = _row(session, customer_id)
    return row is not None and row.confirmed_at is not None and row.disabled_at is None


def enroll_demo_customers(session: Session, customer_ids: list[int]) -> dict[int, str]:
    """Enrol demo customers directly (active at once) and return their secrets.

    Idempotent: an already active demo customer keeps its secret, so re-running the seed
    does not invalidate the authenticator a tester already set up. Used only by the seed.
    """
    secrets: dict[int, str] = {}
    for customer_id in customer_ids:
        row = _row(session, customer_id, lock=True)
        if row is not None and row.confirmed_at is not None:
            secrets[customer_id] = open_secret(row.secret_ref, customer_id, session)
            continue
        secret = totp.new_secret()
        ref = seal_secret(secret, customer_id, session, pending=False)
        if row is None:
            row = StepUpEnrolment(customer_id=customer_id, secret_ref=ref)
            session.add(row)
        row.secret_ref = ref
        row.confirmed_at = utcnow()
        row.last_used_step = None
        row.failures = 0
        row.locked_until = None
        secrets[customer_id] = secret
    session.flush()
    if secrets:
        audit.record(session, "system", "stepup.demo_enrolled", details={"count": len(secrets)})
    return secrets


def demo_secret(session: Session, customer_id: int) -> str | None:
    """The active secret of a customer, for dev-only CLI commands (callers check dev keys)."""
    row = _row(session, customer_id)
    if row is None or row.confirmed_at is None:
        return None
    return open_secret(row.secret_ref, customer_id, session)


def remove_enrolment(session: Session, customer_id: int) -> bool:
    """Delete the customer's enrolment (erasure); True when there was one.

    The secret goes with the row; the vault entry it pointed to carries the customer id,
    so the vault's own erasure removes it.
    """
    result = session.execute(
        delete(StepUpEnrolment).where(StepUpEnrolment.customer_id == customer_id)
    )
    return bool(result.rowcount)
