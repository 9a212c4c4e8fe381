"""Enrolment: pending until a first code, secrets encrypted at rest, no silent replacement."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from cartguard.shop.models import StepUpEnrolment
from cartguard.stepup.enrolment import (
    EnrolmentError,
    begin_enrolment,
    confirm_enrolment,
    enroll_demo_customers,
    is_enrolled,
)
from cartguard.stepup.service import StepUpService, StepUpStatus


def test_begin_returns_secret_uri_and_png_qr(db_session, clock):
    enrolment = begin_enrolment(db_session, 3)
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
    enrolment = begin_enrolment(db_session, 3)
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
    abandoned = begin_enrolment(db_session, 3)
    kept = begin_enrolment(db_session, 4)
    assert confirm_enrolment(db_session, 4, code_for(kept.secret))
    clock.advance(minutes=61)
    assert not confirm_enrolment(db_session, 3, code_for(abandoned.secret))
    clock.advance(days=400)  # well past the vault's default retention
    assert StepUpService(db_session).verify(4, "c-later", code_for(kept.secret)).ok


def test_pending_enrolment_needs_a_valid_first_code(db_session, clock, code_for):
    enrolment = begin_enrolment(db_session, 3)
    service = StepUpService(db_session)
    assert not is_enrolled(db_session, 3)
    assert service.status(3, "c-enrol") is StepUpStatus.NOT_ENROLLED
    right = code_for(enrolment.secret)
    assert not confirm_enrolment(db_session, 3, f"{(int(right) + 7) % 1_000_000:06d}")
    assert not confirm_enrolment(db_session, 3, "abcdef")
    assert not is_enrolled(db_session, 3)
    assert confirm_enrolment(db_session, 3, right)
    assert is_enrolled(db_session, 3)
    assert service.status(3, "c-enrol") is StepUpStatus.REQUIRED
    # The confirming code is spent: it cannot also pass a step-up.
    assert not service.verify(3, "c-enrol", right).ok
    clock.advance(seconds=30)
    assert service.verify(3, "c-enrol", code_for(enrolment.secret)).ok


def test_restarting_a_pending_enrolment_replaces_the_secret(db_session, clock, code_for):
    first = begin_enrolment(db_session, 3)
    second = begin_enrolment(db_session, 3)
    assert first.secret != second.secret
    assert not confirm_enrolment(db_session, 3, code_for(first.secret))
    assert confirm_enrolment(db_session, 3, code_for(second.secret))


def test_an_active_enrolment_is_never_silently_replaced(db_session, clock):
    enroll_demo_customers(db_session, [3])
    with pytest.raises(EnrolmentError, match="already has an authenticator"):
        begin_enrolment(db_session, 3)


def test_demo_enrolment_is_idempotent(db_session, clock, code_for):
    first = enroll_demo_customers(db_session, [1, 2])
    again = enroll_demo_customers(db_session, [1, 2])
    assert first == again and first[1] != first[2]
    assert StepUpService(db_session).verify(1, "c-demo", code_for(first[1])).ok
