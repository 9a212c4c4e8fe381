"""The shop schema's version: migrate it (Alembic), and refuse to run on one that is behind.

``create_all`` cannot change a column of a table that exists, so a rolling update that alters the
schema needs migrations: ``cartguard db upgrade`` applies them (idempotent, one process at a time),
and :func:`check_current` lets a process refuse to start on a database older than its code
instead of failing on the first query that touches a new column.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

from cartguard.shop.db import get_engine
from cartguard.shop.models import Base

MIGRATIONS = Path(__file__).with_name("migrations")
#: The first revision: the schema as ``create_all`` built it before migrations existed.
BASELINE = "0001"


class SchemaOutOfDate(RuntimeError):
    """The database's schema is not the one this code expects."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this code knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine | None = None) -> str | None:
    """The revision the database is at (``None``: never migrated)."""
    with (engine or get_engine()).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine | None = None, revision: str = "head") -> None:
    """Bring the database to ``revision``; a database built by ``create_all`` before migrations
    existed is first recorded as the baseline it matches."""
    engine = engine or get_engine()
    with engine.begin() as connection:
        config = _config(connection)
        context = MigrationContext.configure(connection)
        tables = set(inspect(connection).get_table_names())
        if context.get_current_revision() is None and "customers" in tables:
            # Built by create_all: as the models stand now (adopt as head), or as the
            # baseline of the release before migrations (upgrade from there).
            same = not compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}),
                Base.metadata,
            )
            command.stamp(config, "head" if same else BASELINE)
        command.upgrade(config, revision)


def create_schema(engine: Engine | None = None) -> None:
    """Every table at this code's revision: what ``make run``, the CLI and the tests use."""
    upgrade(engine)


def differences(engine: Engine | None = None) -> list:
    """What differs between the database and the models (empty when they match)."""
    with (engine or get_engine()).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def check_current(engine: Engine | None = None) -> None:
    """Raise :class:`SchemaOutOfDate` unless the database is at this code's head revision."""
    found, wanted = current(engine), head()
    if found != wanted:
        raise SchemaOutOfDate(
            f"the shop database is at schema revision {found or 'none'}, this code needs "
            f"{wanted}: run `cartguard db upgrade` first"
        )
