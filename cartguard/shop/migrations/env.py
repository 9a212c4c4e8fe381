"""Alembic's entry point: compares and migrates against ``Base.metadata`` of the shop models.

The connection comes from :mod:`cartguard.shop.schema` (``config.attributes["connection"]``), so
migrations run on exactly the engine the application uses; nothing is read from an ini file.
"""

from __future__ import annotations

from alembic import context

from cartguard.shop.models import Base  # importing the package registers every table

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place: batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
