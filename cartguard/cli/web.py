"""``cartguard web ...``: the web service's commands (demo logins, outbox, serving).

``demo-logins`` prints passwords, so like ``login-token`` it works only with generated dev keys.
"""

from __future__ import annotations

import typer
from sqlalchemy import select

from cartguard.keys import load_keys
from cartguard.shop.db import session_scope
from cartguard.shop.models import Customer
from cartguard.shop.schema import create_schema

web_app = typer.Typer(no_args_is_help=True, help="The web service: webchat page and secure forms.")


@web_app.command("demo-logins")
def demo_logins() -> None:
    """Create missing demo shop logins and print every e-mail / password (dev keys only)."""
    from cartguard.webapp.auth import create_demo_logins, demo_logins_path

    if not load_keys().dev:
        typer.echo("refused: demo logins can be printed only with generated dev keys", err=True)
        raise typer.Exit(code=2)
    create_schema()
    with session_scope() as session:
        ids = list(session.execute(select(Customer.id).order_by(Customer.id)).scalars())
        if not ids:
            typer.echo("the shop has no customers yet: run `cartguard seed` first", err=True)
            raise typer.Exit(code=1)
        logins = create_demo_logins(session, ids)
    for email, password in logins.items():
        typer.echo(f"{email:<40} {password}")
    typer.echo(f"(also in {demo_logins_path()}, readable only by you)")


@web_app.command("deliver-pending")
def deliver_pending_command(
    conversation: str = typer.Option(None, help="only this conversation id"),
) -> None:
    """Send form results that have not reached Rasa yet (the web service also retries alone)."""
    from cartguard.shop.models.web import OutboxNotification
    from cartguard.webapp.outbox import deliver_pending

    delivered = deliver_pending(conversation)
    with session_scope() as session:
        query = select(OutboxNotification.id).where(OutboxNotification.delivered_at.is_(None))
        waiting = len(session.execute(query).scalars().all())
    typer.echo(f"delivered {delivered}; still waiting {waiting}")
    if waiting:
        raise typer.Exit(code=1)


@web_app.command("serve")
def serve_command() -> None:
    """Run the web service in the foreground (same as ``python -m cartguard.webapp``)."""
    from cartguard.webapp.app import InsecureBindError, serve

    try:
        serve()
    except InsecureBindError as exc:
        typer.echo(f"cartguard web service not started: {exc}", err=True)
        raise typer.Exit(code=2) from exc


def register(app: typer.Typer) -> None:
    app.add_typer(web_app, name="web")
