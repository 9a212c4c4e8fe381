"""Step-up under concurrency: the same code twice, and a flood of guesses for one customer.

Each thread has its own database session and connection, as action-server replicas would.
SQLite (the embedded default) and PostgreSQL (marked ``services``: it must be running, a
missing server is a failure, not a skip) are both exercised.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from cartguard.shop.db import get_engine, session_scope
from cartguard.shop.models import AuditEntry, Base, Customer, StepUpEnrolment
from cartguard.stepup import totp
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
    with admin.begin() as conn:  # no skip: a test marked `services` fails without them
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(
        url,
        future=True,
        connect_args={"options": f"-csearch_path={schema}"},
        pool_size=4,
        max_overflow=12,
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


# --- a flood of wrong codes for one customer: at most max_failures are ever compared ------

GUESSES = 32


@pytest.fixture()
def compared(monkeypatch) -> list[str]:
    """Every code the verifier actually compares against the secret (thread-safe list)."""
    seen: list[str] = []
    lock = threading.Lock()
    real = totp.matching_step

    def counting(secret: str, code: str, moment):
        with lock:
            seen.append(code)
        return real(secret, code, moment)

    monkeypatch.setattr(totp, "matching_step", counting)
    return seen


def _flood(engine: Engine, customer_id: int, secret: str) -> list[bool]:
    """GUESSES wrong codes at once from several conversations (some shared by two threads)."""
    now = datetime.now(timezone.utc)  # frozen by the `clock` fixture
    right = {totp.code_at_step(secret, totp.time_step(now) + d) for d in (-1, 0, 1)}
    wrong = [f"{n:06d}" for n in range(100000, 999999, 7919) if f"{n:06d}" not in right]
    barrier = threading.Barrier(GUESSES)

    def guess(n: int) -> bool:
        barrier.wait(timeout=20)
        with session_scope(engine) as session:
            conversation = f"flood-{n % 12}"
            return StepUpService(session).verify(customer_id, conversation, wrong[n]).ok

    with ThreadPoolExecutor(max_workers=GUESSES) as pool:
        return list(pool.map(guess, range(GUESSES)))


def _check_flood(engine: Engine, customer_id: int, compared: list[str]) -> None:
    with session_scope(engine) as session:
        secret = enroll_demo_customers(session, [customer_id])[customer_id]
        before = session.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    outcomes = _flood(engine, customer_id, secret)
    assert not any(outcomes)
    assert len(compared) <= 5, f"{len(compared)} of {GUESSES} parallel guesses were compared"
    with session_scope(engine) as session:
        row = session.get(StepUpEnrolment, customer_id)
        assert row.locked_until is not None  # the flood locked step-up
        reasons = [
            entry.details
            for entry in session.query(AuditEntry)
            .filter(
                AuditEntry.action == "stepup.failure",
                AuditEntry.subject == f"customer:{customer_id}",
            )
            .order_by(AuditEntry.id)
        ][-GUESSES:]
        after = session.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    # the audit log tells the real story: 5 wrong codes, every other guess refused unread
    assert sum('"reason":"wrong"' in r for r in reasons) == len(compared) == 5
    assert sum('"reason":"locked"' in r for r in reasons) == GUESSES - 5
    assert after >= before + GUESSES


def test_parallel_wrong_codes_compare_at_most_five_sqlite(committed_customer, clock, compared):
    _check_flood(get_engine(), committed_customer, compared)


@pytest.mark.services
def test_parallel_wrong_codes_compare_at_most_five_postgres(postgres_engine, clock, compared):
    _check_flood(postgres_engine, 1, compared)


def test_begin_write_takes_sqlite_write_lock_before_reading(tmp_path):
    """pysqlite begins deferred, after the first SELECT: begin_write must lock up front."""
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    from cartguard.shop.db import make_engine
    from cartguard.shop.locking import begin_write

    engine = make_engine(f"sqlite:///{tmp_path / 'lock.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    first, second = Session(engine, future=True), Session(engine, future=True)
    try:
        begin_write(first)
        first.execute(text("SELECT count(*) FROM t")).scalar_one()
        second.execute(text("PRAGMA busy_timeout=50"))
        with pytest.raises(OperationalError, match="locked"):
            begin_write(second)  # the first holds the write lock though it only read so far
        first.rollback()
        begin_write(second)  # free again
        second.execute(text("INSERT INTO t VALUES (1)"))
        second.commit()
    finally:
        first.close()
        second.close()
        engine.dispose()
