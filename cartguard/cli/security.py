"""``cartguard security ...`` and ``cartguard maintenance ...``: detect, contain, recover.

The commands an operator runs during an incident (see ``docs/runbook.md``). Each one signs
in (``cartguard staff login`` first saves typing a code per command), checks the role table
and is audited as the signed-in staff account, in the same transaction as its change.
``scan`` is also what cron runs, with a service credential scoped to ``security.scan``
(``CARTGUARD_SERVICE_TOKEN_FILE=... cartguard security scan``); it prints only new events and
exits 0, so cron mails are news.
"""

from __future__ import annotations

from datetime import timedelta

import typer

from cartguard.cli.signin import staff_identity, staff_session
from cartguard.shop.db import session_scope
from cartguard.shop.models._common import utcnow
from cartguard.staff.roles import Permission

security_app = typer.Typer(
    no_args_is_help=True, help="Security events and incident response (all audited)."
)
maintenance_app = typer.Typer(
    no_args_is_help=True, help="Maintenance mode: sensitive requests are paused for everyone."
)


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code=1)


@security_app.command("events")
def list_events(
    hours: int = typer.Option(24 * 7, help="only events seen within this many hours"),
    open_only: bool = typer.Option(False, "--open", help="only events not yet acknowledged"),
    limit: int = typer.Option(50, help="at most this many, newest first"),
) -> None:
    """Show the security events the anomaly rules raised."""
    from cartguard.monitoring import events as events_lib

    with staff_session(Permission.SECURITY_READ) as (session, _who):
        found = events_lib.list_events(
            session,
            since=utcnow() - timedelta(hours=hours),
            status="open" if open_only else None,
            limit=limit,
        )
        lines = [events_lib.describe(event) for event in found]
    if not lines:
        typer.echo(f"no security events in the last {hours} hours")
        return
    for line in lines:
        typer.echo(line)


@security_app.command("ack")
def acknowledge(event_id: int) -> None:
    """Mark an event as handled (it stays in the list and the audit log)."""
    from cartguard.monitoring import events as events_lib

    with staff_session(Permission.SECURITY_RESPOND) as (session, who):
        events_lib.acknowledge(session, event_id, actor=who.actor)
    typer.echo(f"security event {event_id} acknowledged")


@security_app.command("scan")
def scan() -> None:
    """Run the anomaly rules now and print the events that are new (for cron)."""
    from cartguard.monitoring import events as events_lib
    from cartguard.monitoring import signals
    from cartguard.monitoring.anomaly import scan as run_scan

    with staff_identity(Permission.SECURITY_SCAN):
        signals.flush()
        with session_scope() as session:
            lines = [events_lib.describe(event) for event in run_scan(session)]
    for line in lines:
        typer.echo(line)


@security_app.command("revoke-sessions")
def revoke_sessions(
    yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
) -> None:
    """Log every shopper out: new login and session keys, all sessions ended."""
    from cartguard.monitoring import incident

    with staff_identity(Permission.SECURITY_RESPOND) as who:
        if not yes and not typer.confirm(
            "Every shopper will be signed out and every chat restarted. Continue?"
        ):
            raise typer.Exit(code=1)
    try:
        with session_scope() as session:
            result = incident.revoke_sessions(session, actor=who.actor)
    except incident.IncidentError as exc:
        raise _fail(f"revocation failed: {exc}") from exc
    typer.echo(
        f"revoked: {result.webchat_sessions_ended} webchat sessions, "
        f"{result.web_logins_revoked} shop logins, {result.stepups_ended} step-ups; "
        f"new keys: {', '.join(result.keys_rotated) or 'none'}"
    )
    if result.keys_in_environment:
        names = ", ".join(f"CARTGUARD_{n.upper()}" for n in result.keys_in_environment)
        typer.echo(
            f"ACTION NEEDED: {names} come from the environment; set new random values there "
            "and restart Rasa, the action server and the web service.",
            err=True,
        )
    else:
        typer.echo(
            "restart the web service and Rasa so they also sign new tokens and sessions "
            "with the new keys (old ones are refused already)."
        )


@security_app.command("rotate-vault")
def rotate_vault() -> None:
    """New vault key; every sealed secret re-sealed; old keys deleted once unused."""
    from cartguard.monitoring import incident

    with staff_identity(Permission.KEYS_ROTATE) as who:
        try:
            key_id = incident.rotate_vault(actor=who.actor)
        except incident.IncidentError as exc:
            raise _fail(str(exc)) from exc
    typer.echo(
        f"vault key {key_id} is now the only key; every vault entry and staff authenticator "
        "secret was re-sealed in one transaction"
    )


def _block(kind: str, value: str | None, given: str | None, hours: float | None, reason: str):
    from cartguard.monitoring import incident

    with staff_session(Permission.SECURITY_RESPOND) as (session, who):
        try:
            row = incident.block(
                session,
                kind,
                value,
                actor=who.actor,
                pseudonym_value=given,
                reason=reason,
                hours=hours,
            )
        except incident.IncidentError as exc:
            raise ValueError(str(exc)) from exc
        digest, until = row.pseudonym, row.expires_at
    when = f"until {until:%Y-%m-%d %H:%M} UTC" if until else "until unblocked"
    typer.echo(f"blocked {kind}:{digest} {when} (the channels notice within a few seconds)")


_HOURS = typer.Option(None, help="lift the block automatically after this many hours")
_REASON = typer.Option("", help="why (shown in `blocks`; no personal data)")
_PSEUDONYM = typer.Option(None, "--pseudonym", help="the 16 hex digits shown in an event")


@security_app.command("block-ip")
def block_ip(
    ip: str = typer.Argument(None, help="the client address"),
    pseudonym: str = _PSEUDONYM,
    hours: float = _HOURS,
    reason: str = _REASON,
) -> None:
    """Refuse a client address in webchat, Messenger and the web service."""
    _block("ip", ip, pseudonym, hours, reason)


@security_app.command("block-sender")
def block_sender(
    psid: str = typer.Argument(None, help="the Messenger sender id (PSID)"),
    pseudonym: str = _PSEUDONYM,
    hours: float = _HOURS,
    reason: str = _REASON,
) -> None:
    """Refuse a Messenger sender."""
    _block("sender", psid, pseudonym, hours, reason)


@security_app.command("unblock")
def unblock(
    kind: str = typer.Argument(..., help="ip or sender"),
    value: str = typer.Argument(None, help="the address or PSID"),
    pseudonym: str = _PSEUDONYM,
) -> None:
    """Lift a block."""
    from cartguard.monitoring import incident

    with staff_session(Permission.SECURITY_RESPOND) as (session, who):
        try:
            found = incident.unblock(
                session, kind, value, actor=who.actor, pseudonym_value=pseudonym
            )
        except incident.IncidentError as exc:
            raise ValueError(str(exc)) from exc
    typer.echo("block lifted" if found else "there was no such block (nothing changed)")


@security_app.command("blocks")
def blocks() -> None:
    """List the active blocks (pseudonyms only)."""
    from cartguard.monitoring import incident

    with staff_session(Permission.SECURITY_READ) as (session, _who):
        rows = [
            f"{r.kind}:{r.pseudonym}  by {r.created_by} at {r.created_at:%Y-%m-%d %H:%M}  "
            f"{'until ' + r.expires_at.strftime('%Y-%m-%d %H:%M') if r.expires_at else 'no expiry'}"
            f"  {r.reason}"
            for r in incident.active_blocks(session)
        ]
    typer.echo("\n".join(rows) if rows else "nothing is blocked")


@maintenance_app.command("on")
def maintenance_on() -> None:
    """Pause sensitive requests (balances, invoices, refunds...) for everyone."""
    from cartguard.monitoring import incident

    with staff_session(Permission.SECURITY_RESPOND) as (session, who):
        incident.set_maintenance(session, True, actor=who.actor)
    typer.echo("maintenance mode ON: sensitive requests are answered 'not available right now'")


@maintenance_app.command("off")
def maintenance_off() -> None:
    """Resume sensitive requests."""
    from cartguard.monitoring import incident

    with staff_session(Permission.SECURITY_RESPOND) as (session, who):
        incident.set_maintenance(session, False, actor=who.actor)
    typer.echo("maintenance mode OFF: sensitive requests work again")


@maintenance_app.command("status")
def maintenance_status() -> None:
    """Say whether maintenance mode is on (no sign-in: shoppers see it anyway)."""
    from cartguard.maintenance import is_enabled

    with session_scope() as session:
        on = is_enabled(session)
    typer.echo(f"maintenance mode is {'ON' if on else 'OFF'}")


def register(app: typer.Typer) -> None:
    app.add_typer(security_app, name="security")
    app.add_typer(maintenance_app, name="maintenance")
