"""``cartguard channels ...``: upkeep and support tools for the webchat and Messenger channels.

* ``purge`` forgets what the channels no longer need: webhook keys older than the replay
  window and webchat sessions that never received a message. No sign-in, so cron can run it;
  it can only delete data that is already useless.
* ``messenger-unlink`` removes a customer's Messenger account link (Administrators; audited).
* ``sign-webhook`` prints the ``X-Hub-Signature-256`` header for a JSON file so testers can
  post webhooks with curl. It needs the app secret, so it works only with generated dev keys.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import typer

from cartguard.account_links import unlink
from cartguard.channels.dedupe import purge_seen_events
from cartguard.keys import load_keys
from cartguard.shop.conversations import purge_unclaimed_sessions
from cartguard.shop.db import session_scope

channels_app = typer.Typer(no_args_is_help=True, help="Webchat and Messenger channel tools.")


@channels_app.command("purge")
def purge() -> None:
    """Delete expired webhook keys and never-used webchat sessions."""
    with session_scope() as session:
        events = purge_seen_events(session)
        sessions = purge_unclaimed_sessions(session)
    typer.echo(f"removed {events} expired webhook keys and {sessions} unused webchat sessions")


@channels_app.command("messenger-unlink")
def messenger_unlink(customer_id: int) -> None:
    """Remove a customer's Messenger account link (Administrators)."""
    from cartguard.cli.staff import staff_session
    from cartguard.staff.roles import Permission

    with staff_session(Permission.CUSTOMER_ERASE) as (session, who):
        removed = unlink(session, customer_id, actor=who.actor)
    if removed:
        typer.echo(f"customer {customer_id}: Messenger link removed")
    else:
        typer.echo(f"customer {customer_id} has no Messenger link; nothing to do")


@channels_app.command("sign-webhook")
def sign_webhook(body_file: Path) -> None:
    """Print the X-Hub-Signature-256 header for a webhook body (dev keys only)."""
    keys = load_keys()
    if not keys.dev:
        typer.echo("refused: webhooks can be signed only with generated dev keys", err=True)
        raise typer.Exit(code=2)
    body = body_file.read_bytes()
    digest = hmac.new(keys.raw("messenger_app_secret"), body, hashlib.sha256).hexdigest()
    typer.echo(f"X-Hub-Signature-256: sha256={digest}")


def register(app: typer.Typer) -> None:
    app.add_typer(channels_app, name="channels")
