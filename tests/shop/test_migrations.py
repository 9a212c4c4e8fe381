"""Alembic migrations: from the first revision to head, the schema equals the models.

A rolling update that changes a column needs a migration; ``create_all`` would silently leave the
old column in place. These tests fail as soon as a model changes without a migration, on SQLite
and on PostgreSQL (each run in a database of its own).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

from cartguard.shop import schema
from cartguard.shop.db import make_engine
from cartguard.shop.models import Base

PG_ADMIN_URL = os.environ.get(
    "CARTGUARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _sqlite(tmp_path: Path) -> Engine:
    return make_engine(f"sqlite:///{tmp_path / 'shop.db'}")


@pytest.fixture
def postgres() -> Iterator[Engine]:
    name = f"cg_migrate_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _assert_matches_models(engine: Engine) -> None:
    assert schema.current(engine) == schema.head()
    assert schema.differences(engine) == []
    model_tables = set(Base.metadata.tables)
    assert model_tables <= set(inspect(engine).get_table_names())


def _first_to_head(engine: Engine) -> None:
    schema.upgrade(engine, schema.BASELINE)
    assert schema.current(engine) == schema.BASELINE
    schema.upgrade(engine)
    _assert_matches_models(engine)
    schema.upgrade(engine)  # idempotent: a second deployment step changes nothing
    _assert_matches_models(engine)


def test_sqlite_first_migration_to_head_equals_models(tmp_path: Path) -> None:
    _first_to_head(_sqlite(tmp_path))


@pytest.mark.services
def test_postgresql_first_migration_to_head_equals_models(postgres: Engine) -> None:
    _first_to_head(postgres)


def test_a_database_built_before_migrations_is_adopted_then_upgraded(tmp_path: Path) -> None:
    """Shops that ran the pre-migration release have tables but no alembic_version."""
    engine = _sqlite(tmp_path)
    schema.upgrade(engine, schema.BASELINE)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
    assert schema.current(engine) is None
    schema.upgrade(engine)
    _assert_matches_models(engine)


def test_a_process_refuses_a_database_behind_its_code(tmp_path: Path) -> None:
    engine = _sqlite(tmp_path)
    with pytest.raises(schema.SchemaOutOfDate, match="cartguard db upgrade"):
        schema.check_current(engine)
    schema.upgrade(engine)
    schema.check_current(engine)


def test_a_model_change_without_a_migration_is_noticed(tmp_path: Path) -> None:
    """The guard above can fail: a column the migrations do not create shows up as a diff."""
    engine = _sqlite(tmp_path)
    schema.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE customers ADD COLUMN nickname VARCHAR(20)"))
    assert schema.differences(engine) != []
