"""Step-up verification: drift, replay, binding, expiry, lockout, audit (frozen clock)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cartguard.shop.models import AuditEntry
from cartguard.stepup.service import (
    GENERIC_FAILURE_MESSAGE,
    StepUpService,
    StepUpStatus,
    VerifyOutcome,
)

CONV_X = "conv-x-1f2e3d"
CONV_Y = "conv-y-9a8b7c"


def wrong_code(right: str) -> str:
    return f"{(int(right) + 1) % 1_000_000:06d}"


def test_current_code_makes_this_conversation_fresh(service, secrets_by_customer, code_for):
    assert service.status(1, CONV_X) is StepUpStatus.REQUIRED
    outcome = service.verify(1, CONV_X, code_for(secrets_by_customer[1]))
    assert outcome == VerifyOutcome(ok=True, locked=False, remaining_attempts=None)
    assert service.status(1, CONV_X) is StepUpStatus.FRESH


def test_code_with_spaces_as_apps_display_it_is_accepted(service, secrets_by_customer, code_for):
    code = code_for(secrets_by_customer[1])
    assert service.verify(1, CONV_X, f" {code[:3]} {code[3:]} ").ok


@pytest.mark.parametrize(("steps", "accepted"), [(-1, True), (1, True), (-2, False), (2, False)])
def test_one_step_of_drift_either_side_and_no_more(
    service, secrets_by_customer, code_for, steps, accepted
):
    outcome = service.verify(1, CONV_X, code_for(secrets_by_customer[1], steps=steps))
    assert outcome.ok is accepted
    expected = StepUpStatus.FRESH if accepted else StepUpStatus.REQUIRED
    assert service.status(1, CONV_X) is expected


def test_same_code_is_refused_the_second_time(service, secrets_by_customer, code_for):
    code = code_for(secrets_by_customer[1])
    assert service.verify(1, CONV_X, code).ok
    second = service.verify(1, CONV_X, code)
    assert not second.ok
    assert second.message == GENERIC_FAILURE_MESSAGE


def test_replay_in_another_conversation_of_the_same_customer_is_refused(
    service, secrets_by_customer, code_for
):
    code = code_for(secrets_by_customer[1])
    assert service.verify(1, CONV_X, code).ok
    assert not service.verify(1, CONV_Y, code).ok
    assert service.status(1, CONV_Y) is StepUpStatus.REQUIRED


def test_older_step_is_refused_after_a_newer_one_was_used(service, secrets_by_customer, code_for):
    secret = secrets_by_customer[1]
    assert service.verify(1, CONV_X, code_for(secret, steps=1)).ok
    # Still inside the drift window, but older than the step already accepted.
    assert not service.verify(1, CONV_Y, code_for(secret)).ok
    assert not service.verify(1, CONV_Y, code_for(secret, steps=-1)).ok


def test_next_step_code_works_once_the_clock_moves_on(
    service, secrets_by_customer, code_for, clock
):
    secret = secrets_by_customer[1]
    assert service.verify(1, CONV_X, code_for(secret)).ok
    clock.advance(seconds=30)
    assert service.verify(1, CONV_Y, code_for(secret)).ok


def test_step_up_is_bound_to_conversation_and_customer(service, secrets_by_customer, code_for):
    assert service.verify(1, CONV_X, code_for(secrets_by_customer[1])).ok
    assert service.status(1, CONV_X) is StepUpStatus.FRESH
    assert service.status(1, CONV_Y) is StepUpStatus.REQUIRED
    assert service.status(2, CONV_X) is StepUpStatus.REQUIRED


def test_customer_a_code_in_customer_b_conversation_is_refused(
    service, secrets_by_customer, code_for
):
    code_of_a = code_for(secrets_by_customer[1])
    outcome = service.verify(2, CONV_Y, code_of_a)
    assert not outcome.ok
    assert service.status(2, CONV_Y) is StepUpStatus.REQUIRED
    assert service.status(1, CONV_Y) is StepUpStatus.REQUIRED
    # ...and A's code was not burnt by the attempt: A can still use it.
    assert service.verify(1, CONV_X, code_of_a).ok


def test_idle_window_is_five_minutes(service, secrets_by_customer, code_for, clock):
    assert service.verify(1, CONV_X, code_for(secrets_by_customer[1])).ok
    clock.advance(minutes=4, seconds=59)
    assert service.status(1, CONV_X) is StepUpStatus.FRESH
    clock.advance(seconds=1)
    assert service.status(1, CONV_X) is StepUpStatus.REQUIRED


def test_activity_extends_idle_window_but_never_past_fifteen_minutes(
    service, secrets_by_customer, code_for, clock
):
    assert service.verify(1, CONV_X, code_for(secrets_by_customer[1])).ok
    for _ in range(3):  # a sensitive request every 4 minutes: 12 minutes in total
        clock.advance(minutes=4)
        assert service.status(1, CONV_X) is StepUpStatus.FRESH
        service.touch(1, CONV_X)
    clock.advance(minutes=2, seconds=59)  # 14:59 after the code, 2:59 after the last request
    assert service.status(1, CONV_X) is StepUpStatus.FRESH
    service.touch(1, CONV_X)
    clock.advance(seconds=1)  # 15:00: the absolute limit wins over recent activity
    assert service.status(1, CONV_X) is StepUpStatus.REQUIRED


def test_touch_cannot_revive_an_expired_step_up(service, secrets_by_customer, code_for, clock):
    assert service.verify(1, CONV_X, code_for(secrets_by_customer[1])).ok
    clock.advance(minutes=6)
    service.touch(1, CONV_X)
    assert service.status(1, CONV_X) is StepUpStatus.REQUIRED


def test_five_failures_lock_for_fifteen_minutes(service, secrets_by_customer, code_for, clock):
    secret = secrets_by_customer[1]
    remaining = [service.verify(1, CONV_X, wrong_code(code_for(secret))) for _ in range(5)]
    assert [o.remaining_attempts for o in remaining] == [4, 3, 2, 1, 0]
    assert [o.locked for o in remaining] == [False, False, False, False, True]
    assert service.status(1, CONV_X) is StepUpStatus.LOCKED
    assert service.status(1, CONV_Y) is StepUpStatus.LOCKED  # per customer, not per chat

    # While locked, even the right code fails, with the same message as a wrong one.
    clock.advance(minutes=14, seconds=59)
    locked = service.verify(1, CONV_X, code_for(secret))
    assert not locked.ok and locked.locked
    assert locked.message == remaining[0].message == GENERIC_FAILURE_MESSAGE

    clock.advance(seconds=1)
    assert service.status(1, CONV_X) is StepUpStatus.REQUIRED
    assert service.verify(1, CONV_X, code_for(secret)).ok


def test_failures_after_a_lockout_start_counting_from_zero(
    service, secrets_by_customer, code_for, clock
):
    secret = secrets_by_customer[1]
    for _ in range(5):
        service.verify(1, CONV_X, "000000" if code_for(secret) != "000000" else "111111")
    clock.advance(minutes=15)
    outcome = service.verify(1, CONV_X, wrong_code(code_for(secret)))
    assert outcome.remaining_attempts == 4 and not outcome.locked


def test_success_resets_the_consecutive_failure_count(
    service, secrets_by_customer, code_for, clock
):
    secret = secrets_by_customer[1]
    for _ in range(4):
        service.verify(1, CONV_X, wrong_code(code_for(secret)))
    assert service.verify(1, CONV_X, code_for(secret)).ok
    clock.advance(seconds=30)
    for _ in range(4):
        outcome = service.verify(1, CONV_X, wrong_code(code_for(secret)))
    assert not outcome.locked and outcome.remaining_attempts == 1


def test_lockout_ends_step_ups_already_granted(service, secrets_by_customer, code_for):
    secret = secrets_by_customer[1]
    assert service.verify(1, CONV_X, code_for(secret)).ok
    for _ in range(5):  # someone in another chat guesses codes for the same customer
        service.verify(1, CONV_Y, wrong_code(code_for(secret)))
    assert service.status(1, CONV_X) is StepUpStatus.LOCKED


def test_every_kind_of_failure_looks_the_same(service, secrets_by_customer, code_for):
    secret = secrets_by_customer[1]
    assert service.verify(1, CONV_X, code_for(secret)).ok
    failures = [
        service.verify(1, CONV_X, wrong_code(code_for(secret))),  # wrong
        service.verify(1, CONV_X, code_for(secret)),  # reused
        service.verify(1, CONV_X, code_for(secret, steps=-3)),  # expired
        service.verify(1, CONV_X, "12345"),  # malformed
        service.verify(1, CONV_X, "tok_otp_forged0000"),  # forged vault token
    ]
    for _ in range(2):
        failures.append(service.verify(1, CONV_X, "not a code"))  # last one locks
    failures.append(service.verify(1, CONV_X, code_for(secret, steps=1)))  # locked
    assert all(not f.ok for f in failures)
    assert {f.message for f in failures} == {GENERIC_FAILURE_MESSAGE}
    assert failures[-1].locked


def test_not_enrolled_customer_cannot_step_up(service, code_for):
    from cartguard.stepup.totp import new_secret

    assert service.status(3, CONV_X) is StepUpStatus.NOT_ENROLLED
    outcome = service.verify(3, CONV_X, code_for(new_secret()))
    assert not outcome.ok
    assert service.status(3, CONV_X) is StepUpStatus.NOT_ENROLLED


def test_audit_records_success_failure_and_lockout_without_codes(
    db_session, service, secrets_by_customer, code_for
):
    from cartguard import audit

    secret = secrets_by_customer[1]
    before = db_session.execute(select(AuditEntry.id).order_by(AuditEntry.id.desc())).scalar()
    typed = [code_for(secret)]
    assert service.verify(1, CONV_X, typed[0], source_ip="203.0.113.7").ok
    for _ in range(5):
        typed.append(wrong_code(code_for(secret)))
        service.verify(1, CONV_X, typed[-1], source_ip="203.0.113.7")
    entries = (
        db_session.execute(
            select(AuditEntry).where(AuditEntry.id > (before or 0)).order_by(AuditEntry.id)
        )
        .scalars()
        .all()
    )
    actions = [e.action for e in entries]
    assert actions.count("stepup.success") == 1
    assert actions.count("stepup.failure") == 5
    assert actions.count("stepup.lockout") == 1
    stored = " ".join(f"{e.actor} {e.subject} {e.details}" for e in entries)
    for code in typed:
        assert code not in stored
    assert "203.0.113.7" not in stored  # the IP is kept only as a keyed hash
    assert '"ip_hash"' in stored
    assert all(e.subject == "customer:1" for e in entries)
    assert audit.verify(db_session).ok


def test_end_and_purge_drop_step_ups(db_session, secrets_by_customer, code_for, clock):
    service = StepUpService(db_session)
    assert service.verify(1, CONV_X, code_for(secrets_by_customer[1])).ok
    assert service.verify(2, CONV_Y, code_for(secrets_by_customer[2])).ok
    service.end(CONV_X)
    assert service.status(1, CONV_X) is StepUpStatus.REQUIRED
    assert service.status(2, CONV_Y) is StepUpStatus.FRESH
    assert service.purge_expired() == 0
    clock.advance(minutes=5)
    assert service.purge_expired() == 1


def test_injected_clock_is_used_instead_of_the_system_clock(
    db_session, secrets_by_customer, code_for, clock
):
    from datetime import timedelta

    later = clock.now() + timedelta(minutes=10)
    code_now = code_for(secrets_by_customer[1])
    service = StepUpService(db_session, now=lambda: later)
    assert not service.verify(1, CONV_X, code_now).ok  # 10 minutes late for that code
    assert service.verify(1, CONV_X, code_for(secrets_by_customer[1], steps=20)).ok


@pytest.mark.parametrize(("customer", "conversation"), [(None, CONV_X), (1, ""), (True, CONV_X)])
def test_anonymous_or_unnamed_requests_never_step_up(
    service, secrets_by_customer, code_for, customer, conversation
):
    assert not service.verify(customer, conversation, code_for(secrets_by_customer[1])).ok
    assert service.status(customer, conversation) is StepUpStatus.NOT_ENROLLED
    assert service.verify(1, CONV_X, code_for(secrets_by_customer[1])).ok  # code not burnt
