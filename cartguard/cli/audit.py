"""``cartguard audit verify|show|anchor``: check and read the hash-chained audit log.

``verify`` walks the whole chain, compares its end with the head row, the anchor file and
(``--expect``) a head the operator kept, and exits 2 naming the first problem, so a
monitoring job notices tampering, truncation included. It prints the head to keep: the line
``head SEQ:HASH`` proves later, with ``--expect``, that nothing up to that entry was removed.
Cron runs it with a service credential scoped to ``audit.verify``.
"""

from __future__ import annotations

import typer
from sqlalchemy import select

from cartguard import audit as audit_lib
from cartguard.cli.signin import staff_session
from cartguard.shop.models import AuditEntry
from cartguard.staff.roles import Permission

EXIT_TAMPERED = 2

audit_app = typer.Typer(no_args_is_help=True, help="Verify and read the audit log.")


def _parse_head(value: str | None) -> audit_lib.Head | None:
    if value is None:
        return None
    try:
        return audit_lib.Head.parse(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


@audit_app.command("verify")
def verify(
    expect: str = typer.Option(
        None, help="a head you kept (SEQ:HASH from an earlier verify): it must be in the log"
    ),
) -> None:
    """Check every entry and the head; exit 2 at the first problem."""
    expected = _parse_head(expect)
    with staff_session(Permission.AUDIT_VERIFY) as (session, who):
        result = audit_lib.verify(session, expected=expected)
        # recorded after the walk, so the verdict is about the log as it was found
        entry = audit_lib.record(
            session,
            who.actor,
            "audit.verify",
            details={"ok": result.ok, "checked": result.checked},
        )
        head = audit_lib.Head(int(entry.seq), entry.entry_hash)
    if not result.ok:
        typer.echo(
            f"audit log TAMPERED at entry {result.first_bad_seq or '-'}: {result.reason} "
            f"({result.checked} entries before it are intact)",
            err=True,
        )
        raise typer.Exit(EXIT_TAMPERED)
    typer.echo(f"audit log intact: {result.checked} entries verified")
    typer.echo(f"head {head}  (keep this line: `audit verify --expect {head.seq}:...` checks it)")


@audit_app.command("show")
def show(
    limit: int = typer.Option(20, min=1, max=1000, help="how many of the newest entries"),
    action: str = typer.Option(None, help="only entries with this action, e.g. privacy.erase"),
    actor: str = typer.Option(None, help="only entries by this actor, e.g. staff:alice"),
) -> None:
    """Print the newest entries (they hold identifiers and counts, never personal data)."""
    with staff_session(Permission.AUDIT_READ) as (session, who):
        query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
        if action:
            query = query.where(AuditEntry.action == action)
        if actor:
            query = query.where(AuditEntry.actor == actor)
        entries = list(session.execute(query).scalars())
        audit_lib.record(session, who.actor, "audit.show", details={"shown": len(entries)})
    for entry in reversed(entries):
        at = entry.at.isoformat(timespec="seconds")
        typer.echo(
            f"{entry.seq:>6} {at} {entry.actor:<22} {entry.action:<26} "
            f"{entry.subject or '-'} {entry.details}"
        )


@audit_app.command("anchor")
def anchor(
    reset: bool = typer.Option(
        False, "--reset", help="anchor the log's current head (after a restore from backup)"
    ),
) -> None:
    """Re-anchor the head outside the database once you know why it moved back."""
    if not reset:
        typer.echo("nothing done: pass --reset to anchor the current head", err=True)
        raise typer.Exit(1)
    with staff_session(Permission.AUDIT_REANCHOR) as (session, who):
        chain = audit_lib.verify(session, use_anchor=False)
        if not chain.ok:
            raise ValueError(
                f"refused: the chain itself is broken at entry {chain.first_bad_seq} "
                f"({chain.reason}); re-anchoring would hide that"
            )
        old = audit_lib.anchored_head(audit_lib.database_identity(session))
        entry = audit_lib.record(
            session,
            who.actor,
            "audit.reanchor",
            details={"old": str(old) if old else None, "chain_end": str(chain.head)},
        )
        new = audit_lib.Head(int(entry.seq), entry.entry_hash)
        identity = audit_lib.database_identity(session)
    audit_lib.set_anchor(identity, new)
    typer.echo(f"anchored head {new} (was {old or 'none'})")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
