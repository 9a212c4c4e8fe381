"""Fixtures for the channel tests: a Rasa-style Sanic app with our channels, real socket.io
clients (polling transport), a fake Graph API, and a database of their own.

The channels commit rows (sessions, links, seen webhooks) through ``session_scope``; those
tests get a separate SQLite database for their module so nothing leaks into other areas'
tests that count rows on the shared, seeded shop database.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from faker import Faker

from tests.channels.harness import FakeGraph, free_socket, stand_in_edge


@pytest.fixture(scope="module")
def channel_db(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """A fresh shop database for this module with three customers; yields their ids."""
    from cartguard.settings import get_settings
    from cartguard.shop.db import create_schema, get_engine, session_scope
    from cartguard.shop.models import Customer

    path = tmp_path_factory.mktemp("channels-db") / "shop.db"
    previous = os.environ.get("CARTGUARD_DATABASE_URL")
    os.environ["CARTGUARD_DATABASE_URL"] = f"sqlite:///{path}"
    get_settings.cache_clear()
    get_engine.cache_clear()
    fake = Faker()
    Faker.seed(7)
    try:
        create_schema()
        with session_scope() as session:
            people = [Customer(name=fake.name(), email=fake.unique.email()) for _ in range(3)]
            session.add_all(people)
            session.flush()
            ids = [p.id for p in people]
        yield ids
    finally:
        if previous is None:
            os.environ.pop("CARTGUARD_DATABASE_URL", None)
        else:
            os.environ["CARTGUARD_DATABASE_URL"] = previous
        get_settings.cache_clear()
        get_engine.cache_clear()


@pytest.fixture()
def edge(monkeypatch: pytest.MonkeyPatch) -> str:
    """The real edge redaction if it is installed, else a stand-in; returns which."""
    try:
        import cartguard.pii.edge  # noqa: F401
    except ImportError:
        monkeypatch.setitem(sys.modules, "cartguard.pii.edge", stand_in_edge())
        return "stand-in"
    return "real"


@pytest.fixture()
async def fake_graph() -> AsyncIterator[FakeGraph]:
    graph = FakeGraph()
    app = web.Application()
    app.router.add_post("/v18.0/me/messages", graph.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = free_socket()
    site = web.SockSite(runner, sock)
    await site.start()
    graph.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v18.0"
    try:
        yield graph
    finally:
        await runner.cleanup()
