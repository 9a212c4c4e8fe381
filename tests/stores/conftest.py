"""Fixtures for the store tests: a small Rasa domain and SQLite / PostgreSQL database URLs."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain

DOMAIN_YAML = """
version: "3.1"
intents: [greet, provide_otp, update_payment_method]
entities: [otp_code, order_id]
slots:
  otp_code:
    type: text
    mappings: [{type: from_entity, entity: otp_code}]
  card_number:
    type: text
    mappings: [{type: custom}]
  contact_email:
    type: text
    mappings: [{type: custom}]
responses:
  utter_greet: [{text: "Hello!"}]
"""

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def domain() -> Domain:
    return Domain.from_yaml(DOMAIN_YAML)


def _postgres_url() -> str | None:
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return PG_URL
    except Exception:  # any failure means "not reachable"
        return None


@pytest.fixture(params=["sqlite", "postgresql"])
def tracker_db_url(request: pytest.FixtureRequest, tmp_path: Path, data_dir: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tracker.db'}"
    url = _postgres_url()
    if url is None:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: PostgreSQL variant skipped")
    return url


@pytest.fixture()
def sender_id() -> str:
    return f"test-{uuid.uuid4().hex}"
