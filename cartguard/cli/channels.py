"""``cartguard channels ...``: upkeep and support tools for the webchat and Messenger channels.

* ``purge`` forgets what the channels no longer need: webhook keys older than the replay
  window and webchat sessions that never received a message. Cron runs it with a service
  credential scoped to ``retention.purge``; it can only delete data that is already useless.
* ``messenger-links`` lists Messenger account links (customer, when, the PSID's last digits) and
  ``messenger-unlink`` removes a customer's links (Administrators; both audited).
* ``sign-webhook`` prints the ``X-Hub-Signature-256`` header for a JSON file so testers can
  post webhooks with curl. It needs the app secret, so it works only with generated dev keys.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import typer

from cartguard.audit import record
from cartguard.cli.signin import staff_identity, staff_session
from cartguard.keys import load_keys
from cartguard.shop.db import session_scope
from cartguard.staff.roles import Permission

channels_app = typer.Typer(no_args_is_help=True, help="Webchat and Messenger channel tools.")


@channels_app.command("purge")
def purge() -> None:
    """Delete expired webhook keys and never-used webchat sessions."""
    from cartguard.channels.dedupe import purge_seen_events
    from cartguard.shop.conversations import purge_unclaimed_sessions

    with staff_identity(Permission.RETENTION_PURGE) as who, session_scope() as session:
        events = purge_seen_events(session)
        sessions = purge_unclaimed_sessions(session)
        record(
            session,
            who.actor,
            "channels.purge",
            details={"webhook_keys": events, "webchat_sessions": sessions},
        )
    typer.echo(f"removed {events} expired webhook keys and {sessions} unused webchat sessions")


@channels_app.command("messenger-links")
def messenger_links(
    customer_id: int = typer.Option(0, "--customer", help="only this customer's links"),
) -> None:
    """List Messenger account links, newest first (Administrators; audited)."""
    from cartguard.account_links import list_links

    with staff_session(Permission.SECURITY_READ) as (session, who):
        links = list_links(session, customer_id or None)
        record(
            session,
            who.actor,
            "messenger.links_listed",
            details={"links": len(links), "customer": str(customer_id or "all")},
        )
    if not links:
        typer.echo("no Messenger links" + (f" for customer {customer_id}" if customer_id else ""))
        return
    typer.echo(f"{'customer':>8}  {'linked at (UTC)':<19}  PSID")
    for link in links:
        linked_at = link.linked_at.strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"{link.customer_id:>8}  {linked_at:<19}  ...{link.psid[-4:]}")
    typer.echo(f"{len(links)} link(s); remove with `cartguard channels messenger-unlink CUSTOMER`")


@channels_app.command("messenger-unlink")
def messenger_unlink(customer_id: int) -> None:
    """Remove a customer's Messenger account link (Administrators)."""
    from cartguard.account_links import unlink

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
