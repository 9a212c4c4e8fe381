"""Every command of the ``cartguard`` app against docs/staff-roles.md, and the attack of issue 14.

Issue 14: `stepup reset|unlock|disable|status`, `security ...`, `maintenance on|off` and
`vault rotate|purge-expired` ran without any sign-in, and recorded `staff:$LOGNAME` as the
actor: `LOGNAME=anyone cartguard stepup reset 1` removed a customer's authenticator.

* the command table in the docs lists exactly the commands the app has;
* each command with a permission refuses without sign-in (exit 4), refuses a role without the
  permission (exit 3, naming it), and runs for a role that holds it;
* through the installed ``.venv/bin/cartguard`` with no terminal (``stdin`` from /dev/null)
  and ``LOGNAME=anyone``, every one of them exits 4 and the database, key file and data
  directory are byte-for-byte unchanged;
* `staff login` opens a 15-minute session that later commands use; logout and expiry end it;
  a service credential does exactly its scope.
"""

from __future__ import annotations

import hashlib
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import click
import pyotp
import pytest
from sqlalchemy import select
from typer.main import get_command

from cartguard.cli import app
from cartguard.cli.signin import session_file
from cartguard.settings import PROJECT_ROOT, get_settings
from cartguard.shop.db import session_scope
from cartguard.shop.models import AuditEntry
from cartguard.staff.roles import DESCRIPTIONS, PERMISSIONS, Permission, Role
from tests.staffcli import PASSWORD, cli_as, installed_cli, make_staff, service_token_file

DOC = PROJECT_ROOT / "docs" / "staff-roles.md"
NONE_REASONS = {
    "dev keys only",
    "developer tool",
    "deployment",
    "public",
    "bootstrap",
    "host operator",
    "it is the sign-in",
    "ends your own session",
    "operations",
}

#: arguments for commands that need some; chosen so that an allowed run harms nothing
ARGS: dict[str, list[str]] = {
    "audit anchor": ["--reset"],
    "channels messenger-unlink": ["987654321"],
    "privacy erase": ["987654321", "--yes"],
    "privacy export": ["987654321"],
    "privacy transcript": ["no-such-conversation"],
    "security ack": ["987654321"],
    "security block-ip": ["--pseudonym", "00000000000000aa", "--hours", "1"],
    "security block-sender": ["--pseudonym", "00000000000000bb", "--hours", "1"],
    "security revoke-sessions": ["--yes"],
    "security unblock": ["ip", "--pseudonym", "00000000000000aa"],
    "staff add": ["walk-new-viewer", "--role", "Viewer"],
    "staff disable": ["no-such-person"],
    "staff enable": ["no-such-person"],
    "staff reset-2fa": ["no-such-person"],
    "staff set-role": ["no-such-person", "Viewer"],
    "staff service-token create": ["walk-cron", "--scope", "audit.verify"],
    "staff service-token revoke": ["walk-cron"],
    "stepup disable": ["987654321"],
    "stepup reset": ["987654321"],
    "stepup status": ["987654321"],
    "stepup unlock": ["987654321"],
    "tickets answer": ["TK-00000", "Thanks, sorted."],
    "tickets show": ["TK-00000"],
}
ENV = {"CARTGUARD_NEW_STAFF_PASSWORD": PASSWORD}


def app_commands() -> dict[str, list[str]]:
    """Every leaf command of the app and the names of its required parameters."""
    found: dict[str, list[str]] = {}

    def walk(command: click.Command, path: list[str]) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
        else:
            found[" ".join(path)] = [p.name for p in command.params if p.required]

    walk(get_command(app), [])
    return found


def documented() -> dict[str, str]:
    """``command -> access`` from the "Every command" table of docs/staff-roles.md."""
    section = DOC.read_text().split("## Every command", 1)[1].split("\n## ", 1)[0]
    table: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            table[cells[0].strip("`")] = cells[1].strip("`")
    return table


def gated() -> dict[str, Permission]:
    return {c: Permission(a) for c, a in documented().items() if not a.startswith("none")}


def test_the_docs_list_every_command_and_only_those() -> None:
    table = documented()
    assert set(table) == set(app_commands())
    for command, access in table.items():
        if access.startswith("none"):
            assert access.removeprefix("none: ") in NONE_REASONS, f"{command}: {access}"
        else:
            Permission(access)  # a real permission of the role table


def test_every_required_argument_has_a_sample() -> None:
    """A new gated command with arguments must say here how to run it harmlessly."""
    missing = [c for c in gated() if app_commands()[c] and c not in ARGS]
    assert missing == []


@pytest.fixture(scope="module")
def people(privacy_env) -> dict[Role, dict[str, str]]:
    return {role: make_staff(role) for role in Role}


def _holder(permission: Permission) -> Role:
    return next(role for role in Role if role in PERMISSIONS[permission])


def _outsider(permission: Permission) -> Role | None:
    return next((role for role in Role if role not in PERMISSIONS[permission]), None)


@pytest.mark.parametrize("command", sorted(gated()))
def test_each_gated_command_demands_its_permission(people, command) -> None:
    permission = gated()[command]
    args = [*command.split(), *ARGS.get(command, [])]

    nobody = cli_as(None, args, LOGNAME="anyone", USER="anyone", **ENV)
    assert nobody.exit_code == 4, f"{command} ran without sign-in: {nobody.stdout}"
    assert "not signed in" in nobody.stderr

    outsider = _outsider(permission)
    if outsider is not None:
        refused = cli_as(people[outsider], args, **ENV)
        assert refused.exit_code == 3, f"{outsider.value} was not refused: {command}"
        assert DESCRIPTIONS[permission] in refused.stderr

    allowed = cli_as(people[_holder(permission)], args, **ENV)
    assert allowed.exit_code in (0, 1), f"{command}: {allowed.stderr}"
    assert "refused" not in allowed.stderr and "not signed in" not in allowed.stderr


# --- the installed command, no terminal, LOGNAME=anyone --------------------------------------


def _fingerprint(data_dir: Path) -> dict[str, str]:
    """Every file under the data directory (the databases and the key file included)."""
    return {
        str(path.relative_to(data_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(data_dir.rglob("*"))
        if path.is_file() and not path.name.endswith(("-wal", "-shm"))
    }


def test_installed_cli_refuses_every_staff_command_without_sign_in(privacy_env) -> None:
    from cartguard.shop.db import get_engine

    get_engine().dispose()  # nothing of ours holds the database open while we compare
    session_file().unlink(missing_ok=True)
    with session_scope() as session:  # checkpoint the WAL into shop.db before comparing
        session.connection().exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    before = _fingerprint(privacy_env)
    env = {"CARTGUARD_DATA_DIR": str(privacy_env), "LOGNAME": "anyone", "USER": "anyone", **ENV}

    def run(command: str):
        return command, installed_cli([*command.split(), *ARGS.get(command, [])], env)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(run, sorted(gated())))
    ran = {c: r.returncode for c, r in results if r.returncode != 4}
    assert ran == {}, f"ran without sign-in: {ran}"
    assert all("not signed in" in r.stderr for _, r in results)
    with session_scope() as session:
        session.connection().exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert _fingerprint(privacy_env) == before  # nothing changed, not even an audit entry


def test_installed_cli_login_session_is_used_then_logout_ends_it(privacy_env) -> None:
    admin = make_staff(Role.ADMINISTRATOR)  # real time: no code of this account used yet
    env = {"CARTGUARD_DATA_DIR": str(privacy_env), "LOGNAME": "anyone"}
    login = installed_cli(
        ["staff", "login"],
        {
            **env,
            "CARTGUARD_STAFF_USER": admin["user"],
            "CARTGUARD_STAFF_PASSWORD": PASSWORD,
            "CARTGUARD_STAFF_OTP": pyotp.TOTP(admin["secret"]).now(),
        },
    )
    assert login.returncode == 0, login.stderr
    assert stat.S_IMODE(session_file().stat().st_mode) == 0o600
    token = session_file().read_text().strip()

    status = installed_cli(["maintenance", "on"], env)  # no code typed: the session acts
    assert status.returncode == 0, status.stderr
    off = installed_cli(["maintenance", "off"], env)
    assert off.returncode == 0, off.stderr
    with session_scope() as session:
        actors = (
            session.execute(
                select(AuditEntry.actor)
                .where(AuditEntry.action.in_(["maintenance.on", "maintenance.off"]))
                .order_by(AuditEntry.seq)
            )
            .scalars()
            .all()
        )
        stored = session.execute(select(AuditEntry.details)).scalars().all()
    assert set(actors[-2:]) == {f"staff:{admin['user']}"}  # not staff:anyone
    assert all(token not in details for details in stored)  # the token is never logged

    assert installed_cli(["staff", "logout"], env).returncode == 0
    assert not session_file().exists()
    session_file().write_text(token + "\n")  # a copy kept from before the logout...
    session_file().chmod(0o600)
    stolen = installed_cli(["maintenance", "on"], env)
    assert stolen.returncode == 4 and "revoked" in stolen.stderr  # ...signs nobody in
    session_file().unlink()


def test_a_session_lasts_fifteen_minutes(privacy_env, people) -> None:
    from tests.staffcli import next_instant

    start = next_instant()
    login = cli_as(people[Role.VIEWER], ["staff", "login"], at=start)
    assert login.exit_code == 0, login.stderr
    try:
        assert cli_as(None, ["staff", "whoami"], at=start + timedelta(minutes=14)).exit_code == 0
        late = cli_as(None, ["staff", "whoami"], at=start + timedelta(minutes=16))
        assert late.exit_code == 4 and "expired" in late.stderr
    finally:
        session_file().unlink(missing_ok=True)


def test_a_readable_token_file_is_refused(privacy_env, people) -> None:
    from tests.staffcli import next_instant

    start = next_instant()
    login = cli_as(people[Role.EDITOR], ["staff", "login"], at=start)
    assert login.exit_code == 0
    try:
        session_file().chmod(0o644)
        result = cli_as(None, ["privacy", "stats"], at=start + timedelta(minutes=1))
        assert result.exit_code == 4 and "readable by others" in result.stderr
    finally:
        session_file().unlink(missing_ok=True)


def test_a_service_credential_does_its_scope_and_nothing_else(privacy_env, tmp_path) -> None:
    token = service_token_file(tmp_path, "audit.verify")
    env = {"CARTGUARD_SERVICE_TOKEN_FILE": str(token)}
    verified = cli_as(None, ["audit", "verify"], **env)
    assert verified.exit_code == 0, verified.stderr
    for command in (["audit", "show"], ["stepup", "reset", "1"], ["privacy", "purge"]):
        refused = cli_as(None, command, **env)
        assert refused.exit_code == 3, command
        assert "not scoped to" in refused.stderr
    with session_scope() as session:
        actors = (
            session.execute(
                select(AuditEntry.actor)
                .where(AuditEntry.action == "audit.verify")
                .order_by(AuditEntry.seq)
            )
            .scalars()
            .all()
        )
    assert re.fullmatch(r"service:job-[0-9a-f]{6}", actors[-1])


def test_a_service_credential_cannot_carry_a_staff_permission(privacy_env, people) -> None:
    admin = people[Role.ADMINISTRATOR]
    for scope in ("stepup.manage", "customer.export", "audit.read"):
        result = cli_as(admin, ["staff", "service-token", "create", "bad-job", "--scope", scope])
        assert result.exit_code == 1 and "cannot be given" in result.stderr


def test_data_dir_files_are_private(privacy_env) -> None:
    settings = get_settings()
    for path in (settings.keys_file, Path(settings.database_url.split("///", 1)[1])):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_sqlite_files_are_created_private_whatever_the_umask(tmp_path) -> None:
    import os

    from sqlalchemy import text

    from cartguard.shop.db import make_engine, private_sqlite_file

    old_umask = os.umask(0o022)  # the usual default: new files readable by everyone
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'new.db'}")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (n INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
            wal = tmp_path / "data" / "new.db-wal"
            assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600
        engine.dispose()
        assert stat.S_IMODE((tmp_path / "data" / "new.db").stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
        loose = tmp_path / "old.db"
        loose.touch(mode=0o644)
        private_sqlite_file(loose)  # an install from before this change is tightened
        assert stat.S_IMODE(loose.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)


def test_tracker_database_is_private(privacy_env) -> None:
    from cartguard.privacy.transcripts import tracker_engine

    tracker_engine().connect().close()
    path = Path(get_settings().tracker_database_url.split("///", 1)[1])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
