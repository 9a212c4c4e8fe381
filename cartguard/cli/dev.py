"""Set-up and tester commands: keys, schema, demo data, login tokens.

``login-token`` (and other printing of secrets) works only with generated dev keys, so the
same command cannot mint tokens for a production installation.
"""

from __future__ import annotations

import typer
from sqlalchemy import select

from cartguard.identity import issue_login_token
from cartguard.keys import generate_dev_keys, load_keys
from cartguard.settings import get_settings
from cartguard.shop.db import create_schema, session_scope
from cartguard.shop.models import Customer, Order
from cartguard.shop.seed import seed_shop


def init_keys() -> None:
    """Generate local development keys into the data directory (never overwrites a key)."""
    settings = get_settings()
    created = generate_dev_keys(settings.keys_file)
    state = "created" if created else "already present"
    typer.echo(f"dev keys {state}: {settings.keys_file}")


def init_db() -> None:
    """Create any missing tables in the configured database."""
    create_schema()
    typer.echo(f"schema ready: {get_settings().database_url}")


def seed(customers: int = typer.Option(5, help="how many demo customers")) -> None:
    """Create the schema and fill an empty shop with generated demo data (idempotent)."""
    create_schema()
    with session_scope() as session:
        people = seed_shop(session, customers=customers)
        typer.echo(f"demo shop ready: {len(people)} customers")


def customers() -> None:
    """List the demo customers with their ids (for testers)."""
    with session_scope() as session:
        rows = session.execute(select(Customer).order_by(Customer.id)).scalars().all()
        for customer in rows:
            orders = session.execute(
                select(Order.id).where(Order.customer_id == customer.id).limit(2)
            ).scalars()
            typer.echo(f"{customer.id:>3}  {customer.name:<28} orders e.g. {', '.join(orders)}")


def login_token(
    customer_id: int,
    ttl: int = typer.Option(3600, help="lifetime in seconds"),
) -> None:
    """Print a webchat login token for a demo customer (only with generated dev keys)."""
    keys = load_keys()
    if not keys.dev:
        typer.echo("refused: login tokens can be printed only with generated dev keys", err=True)
        raise typer.Exit(code=2)
    typer.echo(issue_login_token(customer_id, ttl_seconds=ttl, keys=keys))


def register(app: typer.Typer) -> None:
    app.command("init-keys")(init_keys)
    app.command("init-db")(init_db)
    app.command("seed")(seed)
    app.command("customers")(customers)
    app.command("login-token")(login_token)
