"""Running the ``cartguard`` command as a signed-in staff member, for every test suite.

Every state-changing staff command signs in, so tests that drive the CLI need an account and
a fresh authenticator code per command. :func:`make_staff` creates an account in the current
shop database (argon2 with cheap parameters: hashing strength is tested in
tests/privacy/test_staff.py); :func:`cli_as` runs one command as that account, on a clock
moved 30 s forward each time so every code is new (each code signs in once).

:func:`installed_cli` runs the installed ``.venv/bin/cartguard`` with no terminal attached
(``stdin`` is ``/dev/null``), as cron or a pipeline would.
"""

from __future__ import annotations

import itertools
import os
import secrets
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

PASSWORD = "Copper-thimble-63-orchard"
CARTGUARD = Path(sys.executable).parent / "cartguard"
PROJECT = Path(__file__).resolve().parents[1]
#: every command of the whole test session gets its own 30 s step on this clock
_EPOCH = datetime(2031, 1, 6, 9, 0, 0)
_ticks = itertools.count(1)


def cheap_hashing() -> None:
    """Fast argon2 for test accounts (the real parameters are tested separately)."""
    from argon2 import PasswordHasher

    from cartguard.staff import passwords

    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def make_staff(role, name: str | None = None) -> dict[str, str]:
    """A new staff account with ``role`` in the current database: {"user", "secret"}."""
    from cartguard.shop.db import session_scope
    from cartguard.staff import accounts as staff

    cheap_hashing()
    name = name or f"{role.value.lower().replace(' ', '-')}-{secrets.token_hex(3)}"
    with session_scope() as session:
        created = staff._create(session, name, PASSWORD, role, actor="system:test")
    return {"user": created.username, "secret": created.totp_secret}


def next_instant() -> datetime:
    return _EPOCH + timedelta(seconds=30 * next(_ticks))


def cli_as(
    account: dict[str, str] | None, args: list[str], *, at: datetime | None = None, **env: str
):
    """Run ``cartguard ARGS`` in-process as ``account`` (None: no sign-in given).

    With an account the clock moves to a new 30 s step (or to ``at``) so the code is fresh;
    without one it stays where it is unless ``at`` is given (a session or service token
    issued now must not look expired).
    """
    import contextlib

    import pyotp
    import time_machine
    from typer.testing import CliRunner

    from cartguard.cli import app

    when = at or (next_instant() if account is not None else None)
    travel = time_machine.travel(when, tick=False) if when else contextlib.nullcontext()
    with travel:
        full_env = {"CARTGUARD_STAFF_USER": "", "CARTGUARD_SERVICE_TOKEN_FILE": ""}
        if account is not None:
            full_env = {
                "CARTGUARD_STAFF_USER": account["user"],
                "CARTGUARD_STAFF_PASSWORD": PASSWORD,
                "CARTGUARD_STAFF_OTP": pyotp.TOTP(account["secret"]).now(),
            }
        full_env.update(env)
        return CliRunner(mix_stderr=False).invoke(app, args, env=full_env)


def installed_cli(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """The installed command, no terminal: ``stdin`` is /dev/null, output captured."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CARTGUARD_STAFF")}
    base.pop("CARTGUARD_SERVICE_TOKEN_FILE", None)
    base.update(env or {})
    return subprocess.run(
        [str(CARTGUARD), *args],
        cwd=PROJECT,
        env=base,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def service_token_file(directory: Path, *scopes: str, name: str | None = None) -> Path:
    """A service credential with ``scopes`` in a 0600 file, as cron would hold it."""
    from cartguard.shop.db import session_scope
    from cartguard.staff.accounts import StaffIdentity
    from cartguard.staff.roles import Role
    from cartguard.staff.sessions import issue_service_credential, parse_scopes

    issuer = StaffIdentity("test-issuer", Role.ADMINISTRATOR)
    with session_scope() as session:
        token, _ = issue_service_credential(
            session, issuer, name or f"job-{secrets.token_hex(3)}", parse_scopes(list(scopes))
        )
    path = directory / f"service-{secrets.token_hex(3)}.token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return path
