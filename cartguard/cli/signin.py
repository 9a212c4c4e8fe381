"""How every staff command learns who is running it, and checks the role table.

The actor of a staff command is always a signed-in staff account (or a scoped service
credential), never the operating-system user: ``LOGNAME``, ``USER`` and ``getpass`` are not
read anywhere. Who is acting comes, in this order, from

1. ``CARTGUARD_STAFF_USER`` (+ ``CARTGUARD_STAFF_PASSWORD``, ``CARTGUARD_STAFF_OTP``, or asked
   for on the terminal): a sign-in for this one command;
2. ``CARTGUARD_SERVICE_TOKEN_FILE``: a service credential for cron (its scopes only);
3. the staff session file (:func:`session_file`) that ``cartguard staff login`` wrote;
4. a sign-in asked for on the terminal.

With none of these and no terminal (cron, a pipe, ``stdin`` closed) the command stops with
exit code 4 before touching anything. Token files must be readable by their owner only.

:func:`staff_session` is the one place that signs in, checks the permission and commits the
audit trail even when the command is refused. Exit codes: 0 done, 1 could not be done
(message says why), 3 refused by role or scope, 4 not signed in.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from sqlalchemy.orm import Session

from cartguard.settings import get_settings
from cartguard.shop.db import session_scope
from cartguard.staff import accounts as staff_lib
from cartguard.staff import sessions as sessions_lib
from cartguard.staff.accounts import PermissionDenied, StaffError, StaffIdentity
from cartguard.staff.passwords import PasswordPolicyError
from cartguard.staff.roles import Permission

EXIT_FAILED = 1
EXIT_REFUSED = 3
EXIT_SIGN_IN = 4
SESSION_FILE = "staff-session"
SERVICE_TOKEN_ENV = "CARTGUARD_SERVICE_TOKEN_FILE"  # noqa: S105 - a variable name

NOT_SIGNED_IN = (
    "not signed in: run `cartguard staff login` first (or set CARTGUARD_STAFF_USER, or, for "
    "a scheduled job, CARTGUARD_SERVICE_TOKEN_FILE); there is no terminal to ask on"
)


def session_file() -> Path:
    """Where ``cartguard staff login`` keeps its token (0600, under the data directory)."""
    return get_settings().data_dir / SESSION_FILE


def write_private(path: Path, text: str) -> None:
    """Create or replace ``path`` readable and writable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def read_token_file(path: Path) -> str:
    """A token from a file only its owner can read (like ssh keys); exits 4 otherwise."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        _stop(f"cannot read the token file {path}: {exc.strerror}")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        _stop(f"refused: {path} is readable by others; `chmod 600 {path}` and try again")
    return text


def _stop(message: str, code: int = EXIT_SIGN_IN) -> typer.Exit:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def ask(prompt: str, *, env: str | None = None, hide: bool = False, confirm: bool = False) -> str:
    """A value from ``env`` or, on a terminal only, typed in; never waits on a pipe or cron."""
    value = os.environ.get(env) if env else None
    if value:
        return value
    if not _interactive():
        where = f"set {env} or run" if env else "run"
        _stop(f"{prompt.lower()} needed: {where} on a terminal; nothing was changed", EXIT_FAILED)
    return typer.prompt(prompt, hide_input=hide, confirmation_prompt=confirm)


def _secret_input(env: str, prompt: str) -> str:
    if not os.environ.get(env) and not _interactive():
        _stop(f"{prompt.lower()} needed: set {env} or run on a terminal")
    return ask(prompt, env=env, hide=True)


def sign_in_with_password(username: str | None = None) -> StaffIdentity:
    """Username, password and a fresh authenticator code; exits 4 on any failure."""
    username = username or os.environ.get("CARTGUARD_STAFF_USER")
    if not username:
        if not _interactive():
            _stop(NOT_SIGNED_IN)
        username = ask("Staff username")
    password = _secret_input("CARTGUARD_STAFF_PASSWORD", "Password")
    otp = _secret_input("CARTGUARD_STAFF_OTP", "Authenticator code")
    problem: str | None = None
    with session_scope() as session:  # commits the failure counter and audit entry too
        try:
            who = staff_lib.authenticate(session, username, password, otp)
        except StaffError as exc:  # the secret cannot be opened: an operator must know why
            who, problem = None, str(exc)
    if who is None:
        _stop(problem or staff_lib.SIGN_IN_FAILED)
    return who


def _from_token(token: str) -> StaffIdentity:
    failure: Exception | None = None
    with session_scope() as session:  # commits last use, or the audited refusal
        try:
            who = sessions_lib.resolve(session, token)
        except sessions_lib.SessionRefused as exc:
            failure = exc
    if failure is not None:
        _stop(str(failure))
    return who


def current_identity() -> StaffIdentity:
    """Who runs this command (see the module docstring for the order); exits 4 if nobody."""
    if os.environ.get("CARTGUARD_STAFF_USER"):
        return sign_in_with_password()
    service_file = os.environ.get(SERVICE_TOKEN_ENV)
    if service_file:
        who = _from_token(read_token_file(Path(service_file)))
        if not who.is_service:
            _stop(f"{SERVICE_TOKEN_ENV} names a staff session, not a service credential")
        return who
    path = session_file()
    if path.exists():
        return _from_token(read_token_file(path))
    if not _interactive():
        _stop(NOT_SIGNED_IN)
    return sign_in_with_password()


#: Errors a staff command reports in words; our library raises them before changing data,
#: so committing the transaction keeps only the audit entries they wrote.
#: (An unknown customer, privacy.export.CustomerNotFound, is a LookupError: importing the privacy
#: package here would load the PII detector for every command, `--help` included.)
REPORTED = (StaffError, PasswordPolicyError, ValueError, LookupError)


@contextmanager
def staff_session(permission: Permission) -> Iterator[tuple[Session, StaffIdentity]]:
    """Sign in, check ``permission``, and give the command a session acting as that person.

    Errors in :data:`REPORTED` become a one-line message and exit code 1 (3 when refused);
    the transaction still commits, so the audit entries written so far are kept.
    """
    who = current_identity()
    failure: Exception | None = None
    with session_scope() as session:
        try:
            staff_lib.require(session, who, permission)
            yield session, who
        except REPORTED as exc:
            failure = exc
    if failure is not None:
        typer.echo(str(failure), err=True)
        code = EXIT_REFUSED if isinstance(failure, PermissionDenied) else EXIT_FAILED
        raise typer.Exit(code)


@contextmanager
def staff_identity(permission: Permission) -> Iterator[StaffIdentity]:
    """Sign in and check ``permission`` for commands that manage their own transactions.

    The refusal (if any) is committed at once; no session is held open afterwards, so the
    command may open its own (on SQLite a second writer would otherwise wait on ours).
    """
    who = current_identity()
    refused: PermissionDenied | None = None
    with session_scope() as session:
        try:
            staff_lib.require(session, who, permission)
        except PermissionDenied as exc:
            refused = exc
    if refused is not None:
        _stop(str(refused), EXIT_REFUSED)
    yield who
