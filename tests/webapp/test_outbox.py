"""Form results reach the conversation even when Rasa is down: the outbox and its retries."""

from __future__ import annotations

from pathlib import Path

import pytest
from faker import Faker
from sqlalchemy import select
from webharness import Browser, FakeRasa, free_port, future_expiry, issue, wait_for

from cartguard.clients.rasa_api import RasaClient, RasaUnavailable
from cartguard.shop.db import make_engine, session_factory, session_scope
from cartguard.shop.models import PaymentMethod
from cartguard.shop.models.web import OutboxNotification
from cartguard.shop.schema import create_schema
from cartguard.webapp.outbox import Notification, deliver_pending, enqueue


def _rows(conversation_id: str, scope=session_scope) -> list[OutboxNotification]:
    with scope() as session:
        return list(
            session.execute(
                select(OutboxNotification).where(
                    OutboxNotification.conversation_id == conversation_id
                )
            ).scalars()
        )


def test_a_submission_is_kept_and_delivered_once_rasa_is_back(
    browser: Browser, fake: FakeRasa, demo_logins
) -> None:
    pan = Faker().credit_card_number(card_type="visa16")
    typed, _ = future_expiry()
    token, conversation = issue("card", 1)
    browser.login(*demo_logins[1])  # a link works only for its customer, signed in
    fake.available = False
    done = browser.submit(
        f"/s/{token}", {"number": pan, "expiry": typed, "name": "Kim Test", "cvv": "321"}
    )
    assert done.status_code == 200  # the shopper is not punished for Rasa being down
    with session_scope() as session:
        saved = (
            session.execute(select(PaymentMethod).where(PaymentMethod.last4 == pan[-4:]))
            .scalars()
            .all()
        )
        assert saved and saved[-1].customer_id == 1

    failed = wait_for(lambda: [r for r in _rows(conversation) if r.attempts >= 1])
    assert failed and failed[0].delivered_at is None
    assert "503" in failed[0].last_error and pan not in failed[0].entities

    fake.available = True  # the background task retries by itself
    delivered = wait_for(lambda: [r for r in _rows(conversation) if r.delivered_at is not None])
    assert len(delivered) == 1
    assert [c["name"] for c in fake.calls_for(conversation)] == ["EXTERNAL_card_saved"]


@pytest.fixture()
def private_scope(tmp_path: Path, data_dir: Path):
    """An outbox in its own database, out of reach of the web service's retry loop."""
    from contextlib import contextmanager

    engine = make_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    create_schema(engine)

    @contextmanager
    def scope():
        session = session_factory(engine)()
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise
        finally:
            session.close()

    return scope


def test_deliver_pending_retries_in_order_and_never_twice(fake: FakeRasa, private_scope) -> None:
    from cartguard.keys import load_keys

    secret = load_keys().get("rasa_jwt_secret")
    with private_scope() as session:
        enqueue(session, "conv-a", Notification("EXTERNAL_enrolled", {}))
        enqueue(session, "conv-a", Notification("EXTERNAL_card_saved", {"card_last4": "4242"}))
        enqueue(session, "conv-b", Notification("EXTERNAL_address_changed", {"order_id": "CG-1"}))

    unreachable = RasaClient(f"http://127.0.0.1:{free_port()}", secret, timeout_seconds=2)
    assert deliver_pending(client=unreachable, scope=private_scope) == 0
    rows = _rows("conv-a", private_scope)
    # the first failure of a conversation holds back its later results (order is kept)
    assert [r.attempts for r in rows] == [1, 0]
    assert "could not be reached" in rows[0].last_error

    working = RasaClient(fake.url, secret)
    assert deliver_pending("conv-a", client=working, scope=private_scope) == 2
    assert deliver_pending(client=working, scope=private_scope) == 1  # conv-b
    assert deliver_pending(client=working, scope=private_scope) == 0
    names = [c["name"] for c in fake.calls_for("conv-a")]
    assert names == ["EXTERNAL_enrolled", "EXTERNAL_card_saved"]


def test_unknown_intents_cannot_be_queued(private_scope) -> None:
    with private_scope() as session, pytest.raises(ValueError, match="unknown notification"):
        enqueue(session, "conv-x", Notification("EXTERNAL_anything", {}))


def test_rasa_client_reports_refused_credentials_clearly(fake: FakeRasa) -> None:
    wrong = RasaClient(fake.url, "not-the-secret")
    with pytest.raises(RasaUnavailable, match="--jwt-secret"):
        wrong.trigger_intent("conv-z", "EXTERNAL_enrolled")
    assert fake.rejected  # the fake Rasa saw and refused the bad signature
    fake.rejected.clear()
