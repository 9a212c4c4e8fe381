"""``cartguard audit verify|show``: check and read the hash-chained audit log (Administrators).

``verify`` walks the whole chain and exits 2 naming the first entry that was edited, removed
or moved, so a monitoring job notices tampering.
"""

from __future__ import annotations

import typer
from sqlalchemy import select

from cartguard import audit as audit_lib
from cartguard.cli.staff import staff_session
from cartguard.shop.models import AuditEntry
from cartguard.staff.roles import Permission

EXIT_TAMPERED = 2

audit_app = typer.Typer(no_args_is_help=True, help="Verify and read the audit log.")


@audit_app.command("verify")
def verify() -> None:
    """Check every entry of the audit chain; exit 2 at the first bad one."""
    with staff_session(Permission.AUDIT_READ) as (session, who):
        result = audit_lib.verify(session)
        # recorded after the walk, so the verdict is about the log as it was found
        audit_lib.record(
            session, who.actor, "audit.verify", details={"ok": result.ok, "checked": result.checked}
        )
    if not result.ok:
        typer.echo(
            f"audit log TAMPERED at entry {result.first_bad_id}: {result.reason} "
            f"({result.checked} entries before it are intact)",
            err=True,
        )
        raise typer.Exit(EXIT_TAMPERED)
    typer.echo(f"audit log intact: {result.checked} entries verified")


@audit_app.command("show")
def show(
    limit: int = typer.Option(20, min=1, max=1000, help="how many of the newest entries"),
    action: str = typer.Option(None, help="only entries with this action, e.g. privacy.erase"),
    actor: str = typer.Option(None, help="only entries by this actor, e.g. staff:alice"),
) -> None:
    """Print the newest entries (they hold identifiers and counts, never personal data)."""
    with staff_session(Permission.AUDIT_READ) as (session, who):
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if action:
            query = query.where(AuditEntry.action == action)
        if actor:
            query = query.where(AuditEntry.actor == actor)
        entries = list(session.execute(query).scalars())
        audit_lib.record(session, who.actor, "audit.show", details={"shown": len(entries)})
    for entry in reversed(entries):
        at = entry.at.isoformat(timespec="seconds")
        typer.echo(
            f"{entry.id:>6} {at} {entry.actor:<22} {entry.action:<26} "
            f"{entry.subject or '-'} {entry.details}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
