"""Two replicas verifying the same code at the same moment: exactly one may win.

Each thread has its own database session and connection, as two action-server replicas
would. SQLite (the embedded default) is always exercised; PostgreSQL when it is running.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from cartguard.shop.db import Base, get_engine, session_scope
from cartguard.shop.models import Customer
from cartguard.stepup.enrolment import enroll_demo_customers
from cartguard.stepup.service import StepUpService, StepUpStatus


def _race(engine: Engine, customer_id: int, code: str, conversations: list[str]) -> list[bool]:
    barrier = threading.Barrier(len(conversations))
    results: dict[str, bool] = {}
    errors: list[BaseException] = []

    def attempt(conversation_id: str) -> None:
        try:
            barrier.wait(timeout=10)
            with session_scope(engine) as session:
                outcome = StepUpService(session).verify(customer_id, conversation_id, code)
                results[conversation_id] = outcome.ok
        except BaseException as exc:  # surfaced below; a thread must not swallow it
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(c,)) for c in conversations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return [results[c] for c in conversations]


def _check_single_winner(engine: Engine, customer_id: int, code_for) -> None:
    with session_scope(engine) as session:
        secret = enroll_demo_customers(session, [customer_id])[customer_id]
    code = code_for(secret)
    conversations = [f"race-a-{uuid.uuid4().hex[:8]}", f"race-b-{uuid.uuid4().hex[:8]}"]
    outcomes = _race(engine, customer_id, code, conversations)
    assert sorted(outcomes) == [False, True]
    with session_scope(engine) as session:
        service = StepUpService(session)
        fresh = [service.status(customer_id, c) is StepUpStatus.FRESH for c in conversations]
    assert fresh == outcomes


def test_same_code_in_two_sessions_only_one_succeeds_sqlite(committed_customer, clock, code_for):
    _check_single_winner(get_engine(), committed_customer, code_for)


@pytest.fixture()
def postgres_engine(data_dir) -> Iterator[Engine]:
    """A throwaway schema on the local PostgreSQL, dropped afterwards."""
    url = os.environ.get("CARTGUARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"stepup_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, future=True)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {url}: {exc.__class__.__name__}")
    engine = create_engine(
        url, future=True, connect_args={"options": f"-csearch_path={schema}"}, pool_size=4
    )
    try:
        Base.metadata.create_all(engine)
        with session_scope(engine) as session:
            session.add(Customer(id=1, name="Test Shopper", email="shopper@example.test"))
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.services
def test_same_code_in_two_sessions_only_one_succeeds_postgres(postgres_engine, clock, code_for):
    _check_single_winner(postgres_engine, 1, code_for)
