"""Fixtures of the web service tests: one real server per session, a fake Rasa behind it."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from webharness import Browser, FakeRasa, ServerThread


@pytest.fixture(scope="session")
def demo_logins(data_dir: Path) -> dict[int, tuple[str, str]]:
    """customer id -> (e-mail, password) for every seeded customer."""
    from sqlalchemy import select

    from cartguard.shop.db import session_scope
    from cartguard.shop.models import Customer
    from cartguard.webapp.auth import create_demo_logins

    with session_scope() as session:
        customers = session.execute(select(Customer).order_by(Customer.id)).scalars().all()
        logins = create_demo_logins(session, [c.id for c in customers])
        return {c.id: (c.email.lower(), logins[c.email.lower()]) for c in customers}


@pytest.fixture(scope="session")
def fake_rasa(data_dir: Path) -> Iterator[FakeRasa]:
    from cartguard.keys import load_keys

    fake = FakeRasa(jwt_secret=load_keys().get("rasa_jwt_secret")).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def web(
    data_dir: Path, fake_rasa: FakeRasa, demo_logins: dict, payment_provider
) -> Iterator[ServerThread]:
    """The web service on a free port, telling a fake Rasa and the payment provider stand-in;
    retries the outbox every second."""
    from cartguard.settings import get_settings
    from cartguard.webapp.app import configure_logging, create_app

    settings = dataclasses.replace(
        get_settings(),
        rasa_url=fake_rasa.url,
        outbox_retry_seconds=1,
        payment_provider_url=payment_provider.url,
    )
    # no redacting filter: the leak test proves the service logs no card data by itself
    configure_logging(settings, redact=False)
    server = ServerThread(create_app(settings)).start()
    yield server
    server.stop()


@pytest.fixture()
def browser(web: ServerThread) -> Browser:
    return Browser(web.base_url)


@pytest.fixture()
def fake(fake_rasa: FakeRasa) -> Iterator[FakeRasa]:
    """The fake Rasa, reset to "up" after each test."""
    yield fake_rasa
    fake_rasa.available = True
