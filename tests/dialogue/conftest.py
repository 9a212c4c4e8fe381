"""Fixtures of the action tests: a shopper's login token, a shop database out of reach."""

from __future__ import annotations

import socket

import pytest

from cartguard.identity import issue_login_token


@pytest.fixture()
def token_for(data_dir):
    return lambda customer_id: {"auth_token": issue_login_token(customer_id, ttl_seconds=300)}


def _refused_port() -> int:
    """A loopback port with nothing listening: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=["postgresql refused", "sqlite unopenable"])
def database_down(request, data_dir, tmp_path, monkeypatch):
    """Point the action server at a database the driver cannot reach (a real driver error)."""
    from cartguard.settings import get_settings
    from cartguard.shop.db import get_engine

    if request.param == "postgresql refused":
        url = f"postgresql://cartguard@127.0.0.1:{_refused_port()}/shop?connect_timeout=3"
    else:
        url = f"sqlite:///{tmp_path}"  # a directory: sqlite3 cannot open it as a database
    monkeypatch.setenv("CARTGUARD_DATABASE_URL", url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield
    monkeypatch.delenv("CARTGUARD_DATABASE_URL")
    get_settings.cache_clear()
    get_engine.cache_clear()
