"""``cartguard tickets list|show|answer``: the support mailbox, for Mailbox moderators.

Moderators see a ticket's customer by number only, and its summary and transcript pass
through the PII redactor again on display (tickets are stored redacted; this is the second
lock on the same door). Everything a shopper wrote is printed without control characters or
escape sequences (:mod:`cartguard.cli.display`), so it cannot drive the moderator's terminal.
"""

from __future__ import annotations

import typer
from sqlalchemy import select

from cartguard import audit
from cartguard.cli.display import shopper_text
from cartguard.cli.signin import EXIT_FAILED, staff_session
from cartguard.shop.models import SupportTicket
from cartguard.shop.models._common import utcnow
from cartguard.staff.roles import Permission

STATUSES = ("open", "answered", "closed")
MAX_REPLY_CHARS = 4000

tickets_app = typer.Typer(no_args_is_help=True, help="Support tickets (Mailbox moderators).")


def _one_line(text: str | None, width: int = 60) -> str:
    from cartguard.privacy.integrations import redact_text

    flat = " ".join(shopper_text(redact_text(text)).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@tickets_app.command("list")
def list_tickets(
    status: str = typer.Option("open", help="open, answered, closed or all"),
    limit: int = typer.Option(50, min=1, max=500),
) -> None:
    """List tickets, newest first."""
    if status != "all" and status not in STATUSES:
        typer.echo(f"unknown status {status!r}; use open, answered, closed or all", err=True)
        raise typer.Exit(EXIT_FAILED)
    with staff_session(Permission.TICKETS_READ) as (session, who):
        query = select(SupportTicket).order_by(SupportTicket.created_at.desc()).limit(limit)
        if status != "all":
            query = query.where(SupportTicket.status == status)
        tickets = list(session.execute(query).scalars())
        audit.record(session, who.actor, "tickets.list", details={"status": status})
        for t in tickets:
            customer = f"customer {t.customer_id}" if t.customer_id else "anonymous"
            created = t.created_at.isoformat(timespec="minutes")
            typer.echo(
                f"{t.id:<9} {t.status:<9} {t.kind:<10} {created} {customer:<14} "
                f"{_one_line(t.summary)}"
            )
    if not tickets:
        typer.echo(f"no {status if status != 'all' else ''} tickets".replace("  ", " "))


def _get(session, ticket_id: str) -> SupportTicket:  # noqa: ANN001 - SQLAlchemy session
    ticket = session.get(SupportTicket, ticket_id.strip().upper())
    if ticket is None:
        raise ValueError(f"there is no ticket {ticket_id!r}")
    return ticket


@tickets_app.command("show")
def show(ticket_id: str) -> None:
    """Show one ticket with its redacted transcript."""
    from cartguard.privacy.integrations import redact_text

    with staff_session(Permission.TICKETS_READ) as (session, who):
        t = _get(session, ticket_id)
        audit.record(session, who.actor, "tickets.show", subject=f"ticket:{t.id}")
        typer.echo(f"ticket    {t.id} ({t.kind}, {t.status})")
        typer.echo(f"customer  {t.customer_id if t.customer_id else 'anonymous'}")
        typer.echo(f"opened    {t.created_at.isoformat(timespec='minutes')}")
        typer.echo(f"summary   {shopper_text(redact_text(t.summary))}")
        typer.echo("transcript:")
        typer.echo(shopper_text(redact_text(t.transcript)) or "  (none kept)")
        if t.reply:
            typer.echo(f"reply:\n{shopper_text(t.reply)}")


@tickets_app.command("answer")
def answer(
    ticket_id: str,
    text: str,
    close: bool = typer.Option(False, "--close", help="close the ticket as well"),
) -> None:
    """Answer a ticket (and optionally close it)."""
    reply = text.strip()
    if not reply or len(reply) > MAX_REPLY_CHARS:
        typer.echo(f"an answer needs 1 to {MAX_REPLY_CHARS} characters", err=True)
        raise typer.Exit(EXIT_FAILED)
    with staff_session(Permission.TICKETS_ANSWER) as (session, who):
        t = _get(session, ticket_id)
        if t.status == "closed":
            raise ValueError(f"ticket {t.id} is closed; it cannot be answered any more")
        t.reply = reply
        t.status = "closed" if close else "answered"
        t.updated_at = utcnow()
        # the reply text stays out of the audit log: it may quote the customer
        audit.record(session, who.actor, "tickets.answer", f"ticket:{t.id}", {"status": t.status})
        status = t.status
    typer.echo(f"ticket {ticket_id.upper()} {status}")


def register(app: typer.Typer) -> None:
    app.add_typer(tickets_app, name="tickets")
