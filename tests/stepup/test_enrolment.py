"""Enrolment: only through the e-mailed link, pending until a first code, secrets encrypted at
rest, no silent replacement."""

from __future__ import annotations

import base64
import dataclasses
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from cartguard.links import Link, issue_link, open_link
from cartguard.shop.models import StepUpEnrolment
from cartguard.stepup.enrolment import (
    MAX_EMAILS_PER_HOUR,
    EnrolmentError,
    EnrolmentThrottled,
    begin_enrolment,
    confirm_enrolment,
    enroll_demo_customers,
    is_enrolled,
    request_confirmation,
)
from cartguard.stepup.service import StepUpService, StepUpStatus


def emailed(session, customer_id: int, purpose: str = "enrol_email") -> Link:
    """The customer's opened confirmation link: what the e-mailed page passes on."""
    issued = issue_link(
        session, conversation_id="conv-enrol-test", customer_id=customer_id, purpose=purpose
    )
    return open_link(session, issued.token, viewer_customer_id=customer_id)


def begin(session, customer_id: int):
    return begin_enrolment(session, customer_id, authorised_by=emailed(session, customer_id))


def confirm(session, customer_id: int, code: str) -> bool:
    link = emailed(session, customer_id)
    return confirm_enrolment(session, customer_id, code, authorised_by=link)


def test_begin_returns_secret_uri_and_png_qr(db_session, clock):
    enrolment = begin(db_session, 3)
    uri = urlparse(enrolment.provisioning_uri)
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    query = parse_qs(uri.query)
    assert query["secret"] == [enrolment.secret]
    assert query["issuer"] == ["Cartguard Shop"]
    assert unquote(uri.path).startswith("/Cartguard Shop:")
    prefix = "data:image/png;base64,"
    assert enrolment.qr_png_data_uri.startswith(prefix)
    png = base64.b64decode(enrolment.qr_png_data_uri[len(prefix) :])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert enrolment.secret not in repr(enrolment)


def test_secret_is_not_stored_in_clear(db_session, clock):
    enrolment = begin(db_session, 3)
    row = db_session.get(StepUpEnrolment, 3)
    assert enrolment.secret not in row.secret_ref
    assert row.confirmed_at is None


def test_damaged_secret_reference_never_yields_a_secret(db_session, clock):
    from cartguard.stepup._sealing import SecretUnavailable, open_secret, seal_secret

    ref = seal_secret("JBSWY3DPEHPK3PXP", 3, db_session, pending=False)
    assert ref.startswith("tok_") and "JBSWY3DPEHPK3PXP" not in ref
    assert open_secret(ref, 3, db_session) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(SecretUnavailable):
        open_secret(ref[:-4] + ("AAAA" if not ref.endswith("AAAA") else "BBBB"), 3, db_session)


def test_abandoned_enrolment_expires_but_a_confirmed_one_lasts(db_session, clock, code_for):
    abandoned = begin(db_session, 3)
    kept = begin(db_session, 4)
    assert confirm(db_session, 4, code_for(kept.secret))
    clock.advance(minutes=61)
    assert not confirm(db_session, 3, code_for(abandoned.secret))
    clock.advance(days=400)  # well past the vault's default retention
    assert StepUpService(db_session).verify(4, "c-later", code_for(kept.secret)).ok


def test_pending_enrolment_needs_a_valid_first_code(db_session, clock, code_for):
    enrolment = begin(db_session, 3)
    service = StepUpService(db_session)
    assert not is_enrolled(db_session, 3)
    assert service.status(3, "c-enrol") is StepUpStatus.NOT_ENROLLED
    right = code_for(enrolment.secret)
    assert not confirm(db_session, 3, f"{(int(right) + 7) % 1_000_000:06d}")
    assert not confirm(db_session, 3, "abcdef")
    assert not is_enrolled(db_session, 3)
    assert confirm(db_session, 3, right)
    assert is_enrolled(db_session, 3)
    assert service.status(3, "c-enrol") is StepUpStatus.REQUIRED
    # The confirming code is spent: it cannot also pass a step-up.
    assert not service.verify(3, "c-enrol", right).ok
    clock.advance(seconds=30)
    assert service.verify(3, "c-enrol", code_for(enrolment.secret)).ok


def test_restarting_a_pending_enrolment_replaces_the_secret(db_session, clock, code_for):
    first = begin(db_session, 3)
    second = begin(db_session, 3)
    assert first.secret != second.secret
    assert not confirm(db_session, 3, code_for(first.secret))
    assert confirm(db_session, 3, code_for(second.secret))


def test_an_active_enrolment_is_never_silently_replaced(db_session, clock):
    enroll_demo_customers(db_session, [3])
    with pytest.raises(EnrolmentError, match="already has an authenticator"):
        begin(db_session, 3)


def test_demo_enrolment_is_idempotent(db_session, clock, code_for):
    first = enroll_demo_customers(db_session, [1, 2])
    again = enroll_demo_customers(db_session, [1, 2])
    assert first == again and first[1] != first[2]
    assert StepUpService(db_session).verify(1, "c-demo", code_for(first[1])).ok


def test_enrolment_needs_the_customers_own_open_emailed_link(db_session, clock, code_for):
    """A session alone (a stolen password) cannot enrol: no e-mailed link, no QR code."""
    for wrong in (
        None,  # nothing at all
        emailed(db_session, 3, purpose="enrol"),  # the chat's offer, not the e-mailed link
        emailed(db_session, 4),  # another customer's e-mail
    ):
        with pytest.raises(EnrolmentError):
            begin_enrolment(db_session, 3, authorised_by=wrong)
    link = emailed(db_session, 3)
    enrolment = begin_enrolment(db_session, 3, authorised_by=link)
    with pytest.raises(EnrolmentError):
        confirm_enrolment(db_session, 3, code_for(enrolment.secret), authorised_by=None)
    used = dataclasses.replace(link, used_at=clock.now())  # what a submitted link becomes
    with pytest.raises(EnrolmentError, match="not valid"):
        confirm_enrolment(db_session, 3, code_for(enrolment.secret), authorised_by=used)
    assert not is_enrolled(db_session, 3)


def test_an_emailed_link_expires_after_thirty_minutes(db_session, clock, code_for):
    link = emailed(db_session, 3)
    enrolment = begin_enrolment(db_session, 3, authorised_by=link)
    clock.advance(minutes=31)
    with pytest.raises(EnrolmentError):
        confirm_enrolment(db_session, 3, code_for(enrolment.secret), authorised_by=link)


def test_confirmation_requests_are_limited_and_refused_once_enrolled(db_session, clock):
    from cartguard.shop.models import SecureLink

    db_session.query(SecureLink).filter(SecureLink.customer_id == 3).delete()
    sent = [request_confirmation(db_session, 3) for _ in range(MAX_EMAILS_PER_HOUR)]
    assert {request.mail.kind for request in sent} == {"enrol_confirm"}
    assert all("/s/" in request.mail.body for request in sent)
    assert "/s/" not in repr(sent[0]) and "@" not in repr(sent[0].mail)
    with pytest.raises(EnrolmentThrottled):
        request_confirmation(db_session, 3)
    clock.advance(minutes=61)
    assert request_confirmation(db_session, 3).masked_address.count("•") == 3
    enroll_demo_customers(db_session, [4])
    with pytest.raises(EnrolmentError, match="already has an authenticator"):
        request_confirmation(db_session, 4)
