"""``cartguard db``: the deployment step that migrates the shop schema, and its checks.

These run before any staff account can exist (a fresh install) and from deployment pipelines,
so they are set-up commands like ``init-keys``, not staff commands: they change the schema,
never a customer's data.
"""

from __future__ import annotations

import typer

db_app = typer.Typer(no_args_is_help=True, help="Shop database schema (Alembic migrations).")


@db_app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="target revision")) -> None:
    """Migrate the shop database to the newest schema (safe to run again)."""
    from cartguard.shop import schema

    schema.upgrade(revision=revision)
    typer.echo(f"shop schema at revision {schema.current()}")


@db_app.command("current")
def current() -> None:
    """Print the database's schema revision and the one this code needs."""
    from cartguard.shop import schema

    typer.echo(f"database: {schema.current() or 'none'}\ncode needs: {schema.head()}")


@db_app.command("check")
def check() -> None:
    """Exit 1 unless the database is at this code's schema and matches the models."""
    from cartguard.shop import schema

    try:
        schema.check_current()
    except schema.SchemaOutOfDate as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    diff = schema.differences()
    if diff:
        typer.echo(f"error: the database differs from the models: {diff}", err=True)
        raise typer.Exit(1)
    typer.echo(f"shop schema is current ({schema.head()})")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
