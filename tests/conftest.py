"""Shared fixtures: an isolated data directory, dev keys and a seeded shop for every test session.

Every test run gets its own ``CARTGUARD_DATA_DIR`` under pytest's temporary directory, so tests
never touch the developer's ``./var`` and can search that directory for leaked personal data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def _isolate_environment(data_dir: Path) -> None:
    os.environ["CARTGUARD_DATA_DIR"] = str(data_dir)
    for name in list(os.environ):
        if name.startswith("CARTGUARD_") and name != "CARTGUARD_DATA_DIR":
            del os.environ[name]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh data directory with dev keys and a seeded shop database."""
    path = tmp_path_factory.mktemp("cartguard-var")
    _isolate_environment(path)
    from cartguard.keys import generate_dev_keys
    from cartguard.settings import get_settings
    from cartguard.shop.db import create_schema, get_engine, session_scope
    from cartguard.shop.seed import seed_shop

    get_settings.cache_clear()
    get_engine.cache_clear()
    generate_dev_keys(get_settings().keys_file)
    create_schema()
    with session_scope() as session:
        seed_shop(session, customers=4, orders_per_customer=12)
    yield path


@pytest.fixture()
def db_session(data_dir: Path):
    """A session on the seeded shop; changes are rolled back after the test."""
    from cartguard.shop.db import get_engine

    engine = get_engine()
    connection = engine.connect()
    transaction = connection.begin()
    from sqlalchemy.orm import Session

    session = Session(bind=connection, future=True)
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


# --- dialogue fixtures (financial-demo style): build the tracker Rasa would send an action ---


def build_tracker(
    *,
    sender_id: str = "conv-test",
    intent: str = "greet",
    text: str | None = "hello",
    entities: list[dict] | None = None,
    slots: dict | None = None,
    metadata: dict | None = None,
    input_channel: str = "socketio",
    active_loop: str | None = None,
    prior_events: list[dict] | None = None,
):
    """A rasa_sdk ``Tracker`` whose latest user message carries ``metadata`` (the login token)."""
    from rasa_sdk import Tracker

    parse_data = {
        "intent": {"name": intent, "confidence": 0.99},
        "entities": entities or [],
        "text": text,
    }
    user_event = {
        "event": "user",
        "text": text,
        "parse_data": parse_data,
        "input_channel": input_channel,
        "metadata": metadata or {},
    }
    return Tracker(
        sender_id=sender_id,
        slots=dict(slots or {}),
        latest_message=parse_data,
        events=[*(prior_events or []), user_event],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


@pytest.fixture()
def tracker_factory(data_dir: Path):
    return build_tracker
