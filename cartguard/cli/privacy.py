"""``cartguard privacy ...``: privacy requests, retention, transcripts and aggregate stats.

``export`` and ``erase`` are for Administrators answering a customer's request; ``purge``
runs the configured retention (cron runs it with a service credential scoped to
``retention.purge``); ``transcript`` shows one redacted conversation with every control
character and escape sequence removed; ``stats`` prints counts that identify no one.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from sqlalchemy import func, select

from cartguard import audit
from cartguard.cli.display import shopper_text, terminal_json
from cartguard.cli.signin import EXIT_FAILED, staff_identity, staff_session, write_private
from cartguard.shop.models import ConversationOwner, Customer, SupportTicket
from cartguard.staff.roles import Permission

privacy_app = typer.Typer(no_args_is_help=True, help="Privacy requests, retention, transcripts.")


@privacy_app.command("export")
def export(
    customer_id: int,
    output: Path = typer.Option(None, help="write the JSON to this file (mode 0600)"),
) -> None:
    """Export all data of one customer as JSON (Administrators)."""
    from cartguard.privacy.export import export_customer

    with staff_session(Permission.CUSTOMER_EXPORT) as (session, who):
        data = export_customer(session, customer_id)
        audit.record(session, who.actor, "privacy.export", f"customer:{customer_id}")
    if output is None:
        typer.echo(terminal_json(data))
        return
    write_private(output, json.dumps(data, indent=2, ensure_ascii=False))  # personal data: 0600
    typer.echo(f"export of customer {customer_id} written to {output}")


@privacy_app.command("erase")
def erase(
    customer_id: int,
    yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
) -> None:
    """Erase one customer's data, keeping invoices (Administrators)."""
    from cartguard.privacy.erasure import erase_customer

    if not yes and not typer.confirm(
        f"Erase customer {customer_id}? This cannot be undone (invoices are kept).", default=False
    ):
        typer.echo("nothing erased")
        raise typer.Exit(EXIT_FAILED)
    with staff_session(Permission.CUSTOMER_ERASE) as (session, who):
        report = erase_customer(session, customer_id, actor=who.actor)
    typer.echo(f"customer {customer_id} erased:")
    for name, value in report.as_dict().items():
        if name != "customer_id":
            typer.echo(f"  {name.replace('_', ' ')}: {value}")


@privacy_app.command("purge")
def purge() -> None:
    """Delete transcripts past retention and expired links, tokens and step-up state."""
    from cartguard.privacy.retention import purge as run_purge

    with staff_identity(Permission.RETENTION_PURGE) as who:
        report = run_purge(actor=who.actor)
    typer.echo(f"retention purge (older than {report.cutoff} UTC):")
    for name, value in report.as_dict().items():
        if name != "cutoff":
            typer.echo(f"  {name.replace('_', ' ')}: {value}")


@privacy_app.command("transcript")
def transcript(conversation_id: str) -> None:
    """Show one conversation with personal data redacted."""
    from cartguard.privacy.transcripts import format_transcript, redacted_transcript

    with staff_session(Permission.TRANSCRIPTS_READ_REDACTED) as (session, who):
        lines = redacted_transcript(conversation_id)
        audit.record(session, who.actor, "transcripts.show", f"conversation:{conversation_id}")
    if not lines:
        typer.echo(f"no transcript kept for conversation {conversation_id}", err=True)
        raise typer.Exit(EXIT_FAILED)
    typer.echo(shopper_text(format_transcript(lines)))


@privacy_app.command("stats")
def stats() -> None:
    """Aggregate, non-identifying counts (customers, conversations, consent, tickets)."""
    with staff_session(Permission.STATS_READ) as (session, who):
        customers = session.execute(select(func.count(Customer.id))).scalar_one()
        erased = session.execute(
            select(func.count(Customer.id)).where(Customer.pseudonymized.is_(True))
        ).scalar_one()
        by_channel = session.execute(
            select(ConversationOwner.channel, func.count()).group_by(ConversationOwner.channel)
        ).all()
        consent = session.execute(
            select(ConversationOwner.transcript_consent, func.count()).group_by(
                ConversationOwner.transcript_consent
            )
        ).all()
        tickets = session.execute(
            select(SupportTicket.kind, SupportTicket.status, func.count()).group_by(
                SupportTicket.kind, SupportTicket.status
            )
        ).all()
        audit.record(session, who.actor, "stats.show")
    typer.echo(f"customers: {customers} ({erased} erased)")
    for channel, count in sorted(by_channel):
        typer.echo(f"conversations on {channel}: {count}")
    labels = {True: "agreed", False: "declined", None: "not asked yet"}
    for value, count in consent:
        typer.echo(f"transcript consent {labels[value]}: {count}")
    for kind, status, count in sorted(tickets):
        typer.echo(f"tickets {kind}/{status}: {count}")


def register(app: typer.Typer) -> None:
    app.add_typer(privacy_app, name="privacy")
