"""Fixtures for step-up tests: a frozen clock on a known time step and enrolled customers.

The shop database is shared with every other suite in a full run, and other suites enrol
the demo customers for real. So step-up tests start from a clean slate inside their own
rolled-back transaction (``db_session`` below), and tests that need committed state use a
customer created for them and removed afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete

#: 5 s into a 30 s step, so "the previous/next step" is unambiguous
START = datetime(2026, 3, 2, 10, 0, 5, tzinfo=timezone.utc)
#: a customer id far above the seeded ones, owned by these tests
COMMITTED_CUSTOMER_ID = 947


class Clock:
    """A frozen clock the test moves explicitly (pyotp, utcnow and audit all follow it)."""

    def __init__(self, traveller) -> None:
        self._traveller = traveller

    def advance(self, **delta: float) -> None:
        self._traveller.shift(timedelta(**delta))

    @staticmethod
    def now() -> datetime:
        return datetime.now(timezone.utc).replace(tzinfo=None)


@pytest.fixture()
def clock(time_machine) -> Clock:
    time_machine.move_to(START, tick=False)
    return Clock(time_machine)


@pytest.fixture()
def db_session(db_session):
    """The shared rolled-back session, with no step-up state left by other suites."""
    from cartguard.shop.models import StepUpEnrolment, StepUpSession

    db_session.execute(delete(StepUpSession))
    db_session.execute(delete(StepUpEnrolment))
    return db_session


@pytest.fixture()
def secrets_by_customer(db_session, clock) -> dict[int, str]:
    """Customers 1 and 2 enrolled (rolled back after the test)."""
    from cartguard.stepup.enrolment import enroll_demo_customers

    return enroll_demo_customers(db_session, [1, 2])


@pytest.fixture()
def service(db_session, clock):
    from cartguard.stepup.service import StepUpService

    return StepUpService(db_session)


@pytest.fixture()
def code_for():
    """``code_for(secret, steps=0)``: the code an authenticator shows ``steps`` steps from now."""
    from cartguard.stepup import totp

    def _code(secret: str, *, steps: int = 0) -> str:
        return totp.code_at_step(secret, totp.time_step(datetime.now(timezone.utc)) + steps)

    return _code


def _remove_committed_customer() -> None:
    from cartguard.shop.db import session_scope
    from cartguard.shop.models import Customer
    from cartguard.stepup.admin import forget_customer

    with session_scope() as session:
        forget_customer(session, COMMITTED_CUSTOMER_ID)
        try:
            from cartguard.vault import get_vault
        except ModuleNotFoundError:
            pass
        else:
            get_vault().forget_customer(COMMITTED_CUSTOMER_ID, session=session)
        session.execute(delete(Customer).where(Customer.id == COMMITTED_CUSTOMER_ID))


@pytest.fixture()
def committed_customer(data_dir) -> Iterator[int]:
    """A customer of our own, committed for real (for multi-session tests), then removed."""
    from faker import Faker

    from cartguard.shop.db import session_scope
    from cartguard.shop.models import Customer

    fake = Faker()
    _remove_committed_customer()
    with session_scope() as session:
        session.add(
            Customer(id=COMMITTED_CUSTOMER_ID, name=fake.name(), email=fake.unique.safe_email())
        )
    yield COMMITTED_CUSTOMER_ID
    _remove_committed_customer()
