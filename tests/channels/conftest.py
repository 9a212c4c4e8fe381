"""Fixtures for the channel tests: a Rasa-style Sanic app with our channels, real socket.io
clients (polling transport), a fake Graph API, and a database of their own.

The channels commit rows (sessions, links, seen webhooks) through ``session_scope``; those
tests get a separate SQLite database for their module so nothing leaks into other areas'
tests that count rows on the shared, seeded shop database.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from faker import Faker

from tests.channels.harness import fake_graph, stand_in_edge  # noqa: F401 - fixture
from tests.conftest import own_shop_database


@pytest.fixture(scope="module")
def channel_db(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """A fresh shop database for this module with three customers; yields their ids."""
    from cartguard.shop.db import session_scope
    from cartguard.shop.models import Customer

    fake = Faker()
    Faker.seed(7)
    with own_shop_database(tmp_path_factory.mktemp("channels-db") / "shop.db"):
        with session_scope() as session:
            people = [Customer(name=fake.name(), email=fake.unique.email()) for _ in range(3)]
            session.add_all(people)
            session.flush()
            ids = [p.id for p in people]
        yield ids


@pytest.fixture()
def edge(monkeypatch: pytest.MonkeyPatch) -> str:
    """The real edge redaction if it is installed, else a stand-in; returns which."""
    try:
        import cartguard.channels.tokenize  # noqa: F401
    except ImportError:
        monkeypatch.setitem(sys.modules, "cartguard.channels.tokenize", stand_in_edge())
        return "stand-in"
    return "real"
