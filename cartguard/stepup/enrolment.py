"""Enrolling a customer's authenticator app, confirmed out of band by e-mail.

A password (or a chat token) alone must not be enough to enrol: whoever enrols an
authenticator can then pass every step-up. So the first enrolment, and every one after a
staff reset, starts with an e-mail to the address on file:

1. :func:`request_confirmation` issues a single-use link (purpose ``enrol_email``, 30 minutes,
   bound to the customer) and composes the message; the caller commits, then sends it. At most
   :data:`MAX_EMAILS_PER_HOUR` such e-mails per customer and hour.
2. Opening that link while signed in as that customer, and confirming with a POST (a GET
   changes nothing: mail scanners open links), calls :func:`begin_enrolment` with the opened
   link as proof: the enrolment is *pending*, its secret stored (encrypted) and shown once,
   as a QR code and as text.
3. The first valid code, posted to the same link, calls :func:`confirm_enrolment`: the
   enrolment is *active*, the link used up, and a notice e-mail goes to the address on file.

Both functions refuse without an open ``enrol_email`` link of that customer, so no page can
enrol a customer who did not answer the e-mail. Until then step-up reports
``NOT_ENROLLED`` and every sensitive request stays refused. An active enrolment is never
silently replaced: a lost phone goes through staff (``cartguard stepup reset``), after which
the same e-mail confirmation applies.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from cartguard import audit
from cartguard.links import EMAIL_TTL_SECONDS, Link, count_issued, issue_link
from cartguard.notify import notices
from cartguard.notify.mail import MailError, OutgoingMail, compose, mask_address, send_after_commit
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.stepup import StepUpEnrolment
from cartguard.stepup import totp
from cartguard.stepup._sealing import SecretUnavailable, open_secret, seal_secret

CONFIRMATION_PURPOSE = "enrol_email"
CONFIRMATION_TTL_SECONDS = EMAIL_TTL_SECONDS[CONFIRMATION_PURPOSE]
MAX_EMAILS_PER_HOUR = 3


class EnrolmentError(RuntimeError):
    """The enrolment cannot go ahead; ``str(error)`` is a sentence a shopper can read."""


class EnrolmentThrottled(EnrolmentError):
    """Too many confirmation e-mails for one customer within the hour."""


@dataclass(frozen=True)
class ConfirmationRequest:
    """The confirmation e-mail to send once the caller has committed, and where it goes."""

    mail: OutgoingMail
    masked_address: str  # for the page: "we e-mailed a link to j•••@example.com"

    def __repr__(self) -> str:  # the mail holds a single-use link
        return f"ConfirmationRequest(to={self.masked_address!r})"


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


def _refuse_if_active(row: StepUpEnrolment | None) -> None:
    if row is not None and row.disabled_at is not None:
        raise EnrolmentError(
            "step-up for this account is suspended pending a review by our support team"
        )
    if row is not None and row.confirmed_at is not None:
        raise EnrolmentError("this account already has an authenticator app set up")


def request_confirmation(
    session: Session,
    customer_id: int,
    *,
    conversation_id: str | None = None,
    channel: str = "web",
    now: datetime | None = None,
) -> ConfirmationRequest:
    """Issue the e-mailed confirmation link and compose the message; the caller commits, then
    sends ``mail`` (:func:`cartguard.notify.mail.send`).

    ``conversation_id`` is the chat the request came from: it hears "enrolled" at the end.
    Raises :class:`EnrolmentError` (already enrolled, suspended, no address we can use) or
    :class:`EnrolmentThrottled`.
    """

    now = now or utcnow()
    _refuse_if_active(_row(session, customer_id))
    customer = notices.recipient(session, customer_id)
    if customer is None:
        raise EnrolmentError("this account has no e-mail address we can send the link to")
    recent = count_issued(
        session,
        customer_id=customer_id,
        purpose=CONFIRMATION_PURPOSE,
        since=now - timedelta(hours=1),
    )
    if recent >= MAX_EMAILS_PER_HOUR:
        raise EnrolmentThrottled(
            "we have already sent several confirmation e-mails in the last hour: please use "
            "the newest one (check your spam folder too), or try again in an hour"
        )
    link = issue_link(
        session,
        conversation_id=conversation_id or f"web-{secrets.token_hex(8)}",
        customer_id=customer_id,
        purpose=CONFIRMATION_PURPOSE,
        channel=channel,
        payload={"notify_chat": conversation_id is not None},
    )
    try:
        mail = compose(
            customer.email,
            "enrol_confirm",
            name=customer.name,
            shop_name=notices.SHOP_NAME,
            url=link.url,
            minutes=CONFIRMATION_TTL_SECONDS // 60,
        )
    except MailError as exc:
        raise EnrolmentError("this account has no e-mail address we can send the link to") from exc
    audit.record(
        session, _actor(customer_id), "stepup.enrolment_email_sent", f"customer:{customer_id}"
    )
    return ConfirmationRequest(mail=mail, masked_address=mask_address(customer.email))


def email_confirmation(
    session: Session, customer_id: int, *, conversation_id: str | None, channel: str
) -> ConfirmationRequest:
    """:func:`request_confirmation`, sent by itself once the caller's transaction commits.

    For the chat's enrolment offer: the action calls this and the bot says "we e-mailed you a
    link" (``masked_address`` of the result), instead of handing out a link to a page. A mail
    server that does not take the message is logged; the shopper can ask again.
    """
    request = request_confirmation(
        session, customer_id, conversation_id=conversation_id, channel=channel
    )
    send_after_commit(session, request.mail)
    return request


def _check_authorisation(link: Link, customer_id: int, now: datetime) -> None:
    """The opened e-mail link must be this customer's, unused and current."""
    if not isinstance(link, Link) or link.purpose != CONFIRMATION_PURPOSE:
        raise EnrolmentError("setting up an authenticator needs the link we e-mail you")
    if link.customer_id != customer_id or link.used_at is not None or link.expires_at <= now:
        raise EnrolmentError("this confirmation link is not valid for this account any more")


def begin_enrolment(
    session: Session, customer_id: int, *, authorised_by: Link, now: datetime | None = None
) -> Enrolment:
    """Create (or restart) a pending enrolment and return the secret to show.

    ``authorised_by`` is the customer's opened, unused ``enrol_email`` link: the proof that
    the request was confirmed from the e-mail address on file. Raises
    :class:`EnrolmentError` without it, or when the customer already has an active or a
    disabled enrolment.
    """
    _check_authorisation(authorised_by, customer_id, now or utcnow())
    row = _row(session, customer_id, lock=True)
    _refuse_if_active(row)
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
    session: Session,
    customer_id: int,
    code: str,
    *,
    authorised_by: Link,
    now: datetime | None = None,
) -> bool:
    """Activate a pending enrolment with a first valid code; True when it is now active.

    ``authorised_by`` is the same opened ``enrol_email`` link (see :func:`begin_enrolment`).
    The confirming code's time step is recorded as used, so the same code cannot then be
    replayed to pass a step-up. A wrong code leaves the enrolment pending. On success a
    notice e-mail goes to the address on file once the caller commits.
    """
    now = now or utcnow()
    _check_authorisation(authorised_by, customer_id, now)
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
    notices.notify(session, customer_id, notices.ENROLLED)
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
