"""``cartguard staff ...``: bootstrap, sign-in sessions, accounts and service credentials.

``staff login`` signs in once (username, password, a fresh authenticator code) and opens a
15-minute session that the following commands use, so an operator in an incident does not
need a new code for every command; ``staff logout`` ends it. Cron jobs present a scoped
service credential (``staff service-token create``). How every staff command finds out who
is acting is in :mod:`cartguard.cli.signin`.

Exit codes: 0 done, 1 could not be done (message says why), 3 refused by role or scope,
4 sign-in failed or needed.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cartguard.cli.signin import (
    EXIT_FAILED,
    REPORTED,
    ask,
    read_token_file,
    session_file,
    sign_in_with_password,
    staff_session,
    write_private,
)
from cartguard.shop.db import session_scope
from cartguard.shop.schema import create_schema
from cartguard.staff import accounts as staff_lib
from cartguard.staff import sessions as sessions_lib
from cartguard.staff.roles import DESCRIPTIONS, PERMISSIONS, SERVICE_SCOPES, Permission, Role

NEW_PASSWORD_ENV = "CARTGUARD_NEW_STAFF_PASSWORD"  # noqa: S105 - a variable name

staff_app = typer.Typer(no_args_is_help=True, help="Staff accounts, sign-in and roles.")
token_app = typer.Typer(
    no_args_is_help=True, help="Scoped service credentials for scheduled jobs (cron)."
)


def _new_password(prompt: str) -> str:
    return ask(prompt, env=NEW_PASSWORD_ENV, hide=True, confirm=True)


def _fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _print_secret(created: staff_lib.NewStaff, headline: str) -> None:
    typer.echo(headline)
    typer.echo("Add this to an authenticator app now; it is shown only this once:")
    typer.echo(f"  secret: {created.totp_secret}")
    typer.echo(f"  uri:    {created.provisioning_uri}")


# --- sign-in ------------------------------------------------------------------------------


@staff_app.command("login")
def login() -> None:
    """Sign in once and open a 15-minute staff session for the commands that follow."""
    who = sign_in_with_password()
    with session_scope() as session:
        token, expires = sessions_lib.open_session(session, who)
    write_private(session_file(), token + "\n")
    typer.echo(
        f"signed in as {who.username} ({who.role.value}) until {expires:%H:%M} UTC; "
        "`cartguard staff logout` ends the session"
    )


@staff_app.command("logout")
def logout() -> None:
    """End your staff session at once (the token stops working everywhere)."""
    path = session_file()
    if not path.exists():
        typer.echo("not signed in")
        return
    token = read_token_file(path)
    with session_scope() as session:
        ended = sessions_lib.end_session(session, token)
    path.unlink(missing_ok=True)
    typer.echo("signed out" if ended else "the session had already ended; signed out")


@staff_app.command("whoami")
def whoami() -> None:
    """Show who the following commands act as (signs in like any staff command)."""
    with staff_session(Permission.OWN_PASSWORD) as (_session, who):
        pass
    typer.echo(f"{who.actor} ({who.role.value if who.role else 'service credential'})")


# --- accounts -----------------------------------------------------------------------------


@staff_app.command("create-admin")
def create_admin(username: str) -> None:
    """Create the first Administrator (works only while no staff account exists)."""
    create_schema()
    password = _new_password("New password")
    failure: Exception | None = None
    with session_scope() as session:
        try:
            created = staff_lib.create_first_admin(session, username, password)
        except REPORTED as exc:
            failure = exc
    if failure is not None:
        raise _fail(str(failure))
    _print_secret(created, f"created {created.role.value} account {created.username!r}")


@staff_app.command("add")
def add(
    username: str,
    role: str = typer.Option(
        ..., help="Administrator, Editor, Marketer, Mailbox moderator, Viewer"
    ),
) -> None:
    """Create a staff account with a role (Administrators only)."""
    with staff_session(Permission.STAFF_MANAGE) as (session, who):
        password = _new_password(f"Initial password for {username}")
        created = staff_lib.create_staff(session, who, username, password, Role.parse(role))
    _print_secret(created, f"created {created.role.value} account {created.username!r}")


@staff_app.command("list")
def list_staff() -> None:
    """List staff accounts with role and state (Administrators only)."""
    with staff_session(Permission.STAFF_MANAGE) as (session, who):
        for account in staff_lib.list_accounts(session, who):
            state = "disabled" if account.disabled else "active"
            last = (
                account.last_login_at.isoformat(timespec="minutes")
                if account.last_login_at
                else "-"
            )
            typer.echo(f"{account.username:<24} {account.role:<18} {state:<9} last sign-in {last}")


@staff_app.command("set-role")
def set_role(username: str, role: str) -> None:
    """Change someone's role (Administrators only)."""
    with staff_session(Permission.STAFF_MANAGE) as (session, who):
        staff_lib.set_role(session, who, username, Role.parse(role))
    typer.echo(f"{username} is now {Role.parse(role).value}")


@staff_app.command("disable")
def disable(username: str) -> None:
    """Disable an account and end its sessions (Administrators only)."""
    with staff_session(Permission.STAFF_MANAGE) as (session, who):
        staff_lib.set_disabled(session, who, username, True)
    typer.echo(f"{username} is disabled")


@staff_app.command("enable")
def enable(username: str) -> None:
    """Re-enable an account and lift a lockout (Administrators only)."""
    with staff_session(Permission.STAFF_MANAGE) as (session, who):
        staff_lib.set_disabled(session, who, username, False)
    typer.echo(f"{username} is enabled")


@staff_app.command("reset-2fa")
def reset_2fa(username: str) -> None:
    """Give someone a new authenticator secret (lost phone); ends their sessions."""
    with staff_session(Permission.STAFF_MANAGE) as (session, who):
        created = staff_lib.reset_totp(session, who, username)
    _print_secret(created, f"new authenticator secret for {created.username!r}")


@staff_app.command("passwd")
def passwd() -> None:
    """Change your own password (asks for the current one again)."""
    with staff_session(Permission.OWN_PASSWORD) as (session, who):
        current = ask("Current password", env="CARTGUARD_STAFF_PASSWORD", hide=True)
        new_password = _new_password("New password")
        staff_lib.change_own_password(session, who, current, new_password)
    typer.echo("password changed")


@staff_app.command("roles")
def roles() -> None:
    """Print what each role may do (no sign-in needed: the table is public)."""
    for permission, allowed in PERMISSIONS.items():
        names = ", ".join(r.value for r in Role if r in allowed)
        typer.echo(f"{permission.value:<28} {names:<45} {DESCRIPTIONS[permission]}")


@staff_app.command("break-glass")
def break_glass(
    username: str,
    reason: str = typer.Option(..., help="why, for the audit log (no personal data)"),
    confirm: str = typer.Option(
        None, help="the account name again (asked for on a terminal when not given)"
    ),
) -> None:
    """Recover the last Administrator (host operators only; see docs/runbook.md)."""
    typer.echo(
        "BREAK-GLASS: resets the password and authenticator of an Administrator without a "
        "sign-in. It is recorded in the audit log.",
        err=True,
    )
    if confirm is None:
        confirm = ask("Type the account name to confirm")
    if confirm.strip().lower() != username.strip().lower():
        raise _fail("the confirmation does not match the account name; nothing changed")
    password = _new_password(f"New password for {username}")
    failure: Exception | None = None
    with session_scope() as session:
        try:
            created = staff_lib.break_glass(session, username, password, reason)
        except REPORTED as exc:
            failure = exc
    if failure is not None:
        raise _fail(str(failure))
    _print_secret(created, f"{created.username!r} recovered; every session of it ended")


# --- service credentials ------------------------------------------------------------------


@token_app.command("create")
def token_create(
    name: str,
    scope: list[str] = typer.Option(
        ..., help=f"repeatable: {', '.join(sorted(p.value for p in SERVICE_SCOPES))}"
    ),
    days: int = typer.Option(sessions_lib.SERVICE_DAYS_DEFAULT, help="how long it lasts"),
    output: Path = typer.Option(
        None, help="write the token to this file (mode 0600) instead of printing it"
    ),
) -> None:
    """Issue a scoped credential for a scheduled job (Administrators only)."""
    with staff_session(Permission.STAFF_MANAGE) as (session, who):
        scopes = sessions_lib.parse_scopes(scope)
        token, expires = sessions_lib.issue_service_credential(
            session, who, name, scopes, days=days
        )
    if output is not None:
        write_private(output, token + "\n")
        where = f"written to {output}"
    else:
        typer.echo(token)
        where = "printed above (shown only this once)"
    typer.echo(
        f"service credential {name!r} ({', '.join(sorted(p.value for p in scopes))}) until "
        f"{expires:%Y-%m-%d}; token {where}. Use it with CARTGUARD_SERVICE_TOKEN_FILE=<file>",
        err=output is None,
    )


@token_app.command("list")
def token_list() -> None:
    """List the active service credentials (never their tokens)."""
    with staff_session(Permission.STAFF_MANAGE) as (session, who):
        rows = sessions_lib.list_service_credentials(session, who)
    for row in rows:
        used = row.last_used_at.isoformat(timespec="minutes") if row.last_used_at else "never"
        typer.echo(
            f"{row.name:<24} {','.join(row.scopes):<40} until {row.expires_at:%Y-%m-%d} "
            f"by {row.created_by} last used {used}"
        )
    if not rows:
        typer.echo("no active service credentials")


@token_app.command("revoke")
def token_revoke(name: str) -> None:
    """Revoke a service credential at once."""
    with staff_session(Permission.STAFF_MANAGE) as (session, who):
        found = sessions_lib.revoke_service_credential(session, who, name)
    typer.echo(f"{name} revoked" if found else f"no active service credential named {name!r}")


def register(app: typer.Typer) -> None:
    staff_app.add_typer(token_app, name="service-token")
    app.add_typer(staff_app, name="staff")
