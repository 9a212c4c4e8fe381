"""The anomaly rules over the real audit log, written by the real step-up service.

Each attack is replayed with the code that runs in production (``StepUpService.verify``,
the audit chain, the signal buffer) and must raise exactly one event, once per window, while
normal traffic of the same volume raises none.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from faker import Faker

from cartguard import audit
from cartguard.monitoring import anomaly, signals
from cartguard.monitoring.events import events_log_path
from cartguard.shop.db import session_scope
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.security import SecurityEvent
from cartguard.stepup import totp
from cartguard.stepup.enrolment import enroll_demo_customers
from cartguard.stepup.service import StepUpService

fake = Faker()


def wrong_code(secret: str, now: datetime) -> str:
    """A six-digit code that is not valid in the current window (never a lucky guess)."""
    valid = {totp.current_code(secret, now + timedelta(seconds=d)) for d in (-30, 0, 30)}
    code = 0
    while f"{code:06d}" in valid:
        code += 1
    return f"{code:06d}"


@pytest.fixture()
def secrets_by_customer(mon_db, clean_slate) -> dict[int, str]:
    secrets = {}
    for customer_id in mon_db[:7]:  # one per transaction: SQLite allows one writer at a time
        with session_scope() as session:
            secrets.update(enroll_demo_customers(session, [customer_id]))
    return secrets


def verify(customer_id: int, code: str, ip: str, at: datetime | None = None) -> bool:
    with session_scope() as session:
        service = StepUpService(session, now=(lambda: at) if at else None)
        return service.verify(customer_id, f"conv-{customer_id}", code, source_ip=ip).ok


def scan(settings, now: datetime | None = None) -> list[SecurityEvent]:
    signals.flush()
    with session_scope() as session:
        return anomaly.scan(session, now=now, settings=settings)


def all_events() -> list[SecurityEvent]:
    with session_scope() as session:
        return list(session.query(SecurityEvent).order_by(SecurityEvent.id))


def test_credential_stuffing_from_one_address_raises_one_event(secrets_by_customer, settings):
    attacker = fake.ipv4_public()
    now = utcnow()
    for customer_id, secret in list(secrets_by_customer.items())[:5]:
        assert not verify(customer_id, wrong_code(secret, now), attacker)

    [event] = scan(settings)
    assert event.rule == "credential_stuffing"
    assert event.subject == f"ip:{signals.pseudonym(attacker)}"
    assert event.count == 5 and event.severity == "critical"
    assert attacker not in event.summary  # pseudonym only

    # Scanning again (cron and the web service both do) raises nothing new.
    assert scan(settings) == []
    assert scan(settings, now=utcnow() + timedelta(minutes=3)) == []
    assert len(all_events()) == 1
    with session_scope() as session:
        assert audit.verify(session).ok
        raised = [e for e in session.query(audit.AuditEntry) if e.action == "security.event"]
    assert len(raised) == 1 and raised[0].subject == event.subject
    logged = events_log_path().read_text()
    assert "credential_stuffing" in logged and attacker not in logged


def test_same_volume_of_normal_step_up_traffic_raises_nothing(secrets_by_customer, settings):
    now = utcnow()
    for customer_id, secret in list(secrets_by_customer.items())[:5]:
        shopper_ip = fake.unique.ipv4_public()
        assert not verify(customer_id, wrong_code(secret, now), shopper_ip)  # a typo
        assert verify(customer_id, totp.current_code(secret, now), shopper_ip)
    assert scan(settings) == []


def test_a_customer_locked_out_again_and_again_raises_one_event(secrets_by_customer, settings):
    customer_id, secret = next(iter(secrets_by_customer.items()))
    start = utcnow()
    for round_number in range(3):
        # each round starts after the previous 15-minute lockout has run out
        at = start + timedelta(minutes=20 * round_number)
        for _ in range(5):
            verify(customer_id, wrong_code(secret, at), fake.ipv4_public(), at=at)

    [event] = scan(settings)
    assert event.rule == "repeated_lockout"
    assert event.subject == f"customer:{customer_id}" and event.count == 3
    assert scan(settings) == []


def test_one_lockout_each_for_several_customers_raises_nothing(secrets_by_customer, settings):
    now = utcnow()
    for customer_id, secret in list(secrets_by_customer.items())[:3]:
        for _ in range(5):
            verify(customer_id, wrong_code(secret, now), fake.ipv4_public())
    assert scan(settings) == []


def test_staff_account_exporting_many_customers_raises_an_event(mon_db, clean_slate, settings):
    with session_scope() as session:
        for customer_id in range(1, 7):
            audit.record(session, "staff:mallory", "privacy.export", f"customer:{customer_id}")
    [event] = scan(settings)
    assert (event.rule, event.subject, event.count) == ("staff_bulk_export", "staff:mallory", 6)


def test_the_same_number_of_exports_spread_over_staff_raises_nothing(mon_db, clean_slate, settings):
    with session_scope() as session:
        for customer_id in range(1, 7):
            actor = f"staff:{fake.unique.user_name()}" if customer_id % 2 else "staff:alice"
            audit.record(session, actor, "privacy.export", f"customer:{customer_id}")
    assert scan(settings) == []


def test_bursts_are_raised_again_only_in_a_later_window(mon_db, clean_slate, settings):
    attacker = fake.ipv4_public()
    for _ in range(6):
        signals.note(signals.FORGED_SESSION, ip=attacker)
    [event] = scan(settings)
    assert event.rule == "forged_session_ids"

    # Still going three minutes later: the open event is updated, not duplicated.
    later = utcnow() + timedelta(minutes=3)
    for _ in range(4):
        signals.note(signals.FORGED_SESSION, ip=attacker)
    assert scan(settings, now=later) == []
    assert all_events()[0].count == 10

    # Quiet for longer than the window, then a new burst: a new incident.
    much_later = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(minutes=30)
    for _ in range(6):
        signals.buffer().note(
            signals.FORGED_SESSION, f"ip:{signals.pseudonym(attacker)}", at=much_later
        )
    [again] = scan(settings, now=much_later)
    assert again.id != event.id and len(all_events()) == 2


def test_ip_pseudonyms_match_what_step_up_writes_to_the_audit_log(mon_db):
    from cartguard.stepup.service import _pseudonymize

    address = fake.ipv4_public()
    assert signals.pseudonym(address) == _pseudonymize(address)
