"""``cartguard staff ...``: bootstrap, sign-in and account management for shop staff.

Every staff command signs in first with username, password and a TOTP code, taken from
``CARTGUARD_STAFF_USER`` / ``CARTGUARD_STAFF_PASSWORD`` / ``CARTGUARD_STAFF_OTP`` or asked
for with hidden input. :func:`staff_session` is the one place that signs in, checks the
role's permission and commits the audit trail even when the command is refused, so the
other staff CLI modules (privacy, audit, tickets) use it too.

Exit codes: 0 done, 1 could not be done (message says why), 3 refused by role,
4 sign-in failed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy.orm import Session

from cartguard.privacy.export import CustomerNotFound
from cartguard.shop.db import session_scope
from cartguard.shop.schema import create_schema
from cartguard.staff import accounts as staff_lib
from cartguard.staff.accounts import PermissionDenied, StaffError, StaffIdentity
from cartguard.staff.passwords import PasswordPolicyError
from cartguard.staff.roles import DESCRIPTIONS, PERMISSIONS, Permission, Role

EXIT_FAILED = 1
EXIT_REFUSED = 3
EXIT_SIGN_IN = 4
NEW_PASSWORD_ENV = "CARTGUARD_NEW_STAFF_PASSWORD"  # noqa: S105 - a variable name

staff_app = typer.Typer(no_args_is_help=True, help="Staff accounts and roles.")


def _secret_input(env: str, prompt: str, *, confirm: bool = False) -> str:
    value = os.environ.get(env)
    if value:
        return value
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)


def sign_in() -> StaffIdentity:
    """Sign in from the environment or prompts; exits with code 4 on any failure."""
    username = os.environ.get("CARTGUARD_STAFF_USER") or typer.prompt("Staff username")
    password = _secret_input("CARTGUARD_STAFF_PASSWORD", "Password")
    otp = _secret_input("CARTGUARD_STAFF_OTP", "Authenticator code")
    with session_scope() as session:  # commits the failure counter and audit entry too
        who = staff_lib.authenticate(session, username, password, otp)
    if who is None:
        typer.echo(staff_lib.SIGN_IN_FAILED, err=True)
        raise typer.Exit(EXIT_SIGN_IN)
    return who


#: Errors a staff command reports in words; our library raises them before changing data,
#: so committing the transaction keeps only the audit entries they wrote.
_REPORTED = (StaffError, PasswordPolicyError, CustomerNotFound, ValueError)


@contextmanager
def staff_session(permission: Permission) -> Iterator[tuple[Session, StaffIdentity]]:
    """Sign in, check ``permission``, and give the command a session acting as that person."""
    who = sign_in()
    failure: Exception | None = None
    with session_scope() as session:
        try:
            staff_lib.require(session, who, permission)
            yield session, who
        except _REPORTED as exc:
            failure = exc
    if failure is not None:
        typer.echo(str(failure), err=True)
        code = EXIT_REFUSED if isinstance(failure, PermissionDenied) else EXIT_FAILED
        raise typer.Exit(code)


def _print_new_account(created: staff_lib.NewStaff) -> None:
    typer.echo(f"created {created.role.value} account {created.username!r}")
    typer.echo("Add this to an authenticator app now; it is shown only this once:")
    typer.echo(f"  secret: {created.totp_secret}")
    typer.echo(f"  uri:    {created.provisioning_uri}")


@staff_app.command("create-admin")
def create_admin(username: str) -> None:
    """Create the first Administrator (works only while no staff account exists)."""
    create_schema()
    password = _secret_input(NEW_PASSWORD_ENV, "New password", confirm=True)
    failure: Exception | None = None
    with session_scope() as session:
        try:
            created = staff_lib.create_first_admin(session, username, password)
        except _REPORTED as exc:
            failure = exc
    if failure is not None:
        typer.echo(str(failure), err=True)
        raise typer.Exit(EXIT_FAILED)
    _print_new_account(created)


@staff_app.command("add")
def add(
    username: str,
    role: str = typer.Option(
        ..., help="Administrator, Editor, Marketer, Mailbox moderator, Viewer"
    ),
) -> None:
    """Create a staff account with a role (Administrators only)."""
    password = _secret_input(NEW_PASSWORD_ENV, f"Initial password for {username}", confirm=True)
    with staff_session(Permission.STAFF_MANAGE) as (session, who):
        created = staff_lib.create_staff(session, who, username, password, Role.parse(role))
    _print_new_account(created)


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
    """Disable an account so it can no longer sign in (Administrators only)."""
    with staff_session(Permission.STAFF_MANAGE) as (session, who):
        staff_lib.set_disabled(session, who, username, True)
    typer.echo(f"{username} is disabled")


@staff_app.command("enable")
def enable(username: str) -> None:
    """Re-enable an account and lift a lockout (Administrators only)."""
    with staff_session(Permission.STAFF_MANAGE) as (session, who):
        staff_lib.set_disabled(session, who, username, False)
    typer.echo(f"{username} is enabled")


@staff_app.command("passwd")
def passwd() -> None:
    """Change your own password (sign in with the current one)."""
    new_password = _secret_input(NEW_PASSWORD_ENV, "New password", confirm=True)
    current = os.environ.get("CARTGUARD_STAFF_PASSWORD")
    with staff_session(Permission.OWN_PASSWORD) as (session, who):
        if current is None:
            current = typer.prompt("Current password again", hide_input=True)
        staff_lib.change_own_password(session, who, current, new_password)
    typer.echo("password changed")


@staff_app.command("roles")
def roles() -> None:
    """Print what each role may do (no sign-in needed: the table is public)."""
    for permission, allowed in PERMISSIONS.items():
        names = ", ".join(r.value for r in Role if r in allowed)
        typer.echo(f"{permission.value:<28} {names:<45} {DESCRIPTIONS[permission]}")


def register(app: typer.Typer) -> None:
    app.add_typer(staff_app, name="staff")
