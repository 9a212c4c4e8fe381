"""Staff sign-in: every factor counts, codes work once, failures lock, secrets stay sealed."""

from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cartguard.cli import app
from cartguard.shop.db import session_scope
from cartguard.shop.models import AuditEntry
from cartguard.shop.models.staff import StaffAccount
from cartguard.staff import accounts as staff
from cartguard.staff.passwords import (
    PasswordPolicyError,
    check_password_policy,
    password_problems,
)
from cartguard.staff.roles import Role

PASSWORD = "Amber-lantern-42-meadow"
T0 = 2_000_000_010.0  # a fixed instant in the middle of a 30 s step


@pytest.fixture(scope="module")
def admin(privacy_env) -> dict:
    """Bootstrapped through the real CLI, which prints the authenticator secret once."""
    env = {"CARTGUARD_NEW_STAFF_PASSWORD": PASSWORD}
    result = CliRunner(mix_stderr=False).invoke(
        app, ["staff", "create-admin", "Root-Admin"], env=env
    )
    assert result.exit_code == 0, result.stderr
    secret = re.search(r"secret: ([A-Z2-7]+)", result.stdout).group(1)
    return {"username": "root-admin", "secret": secret}


def _code(secret: str, at: float) -> str:
    return pyotp.TOTP(secret).at(at)


def _login(username: str, password: str, code: str, at: float):
    with session_scope() as session:
        return staff.authenticate(session, username, password, code, now=at)


def _new_account(role: Role, name: str) -> dict:
    with session_scope() as session:
        created = staff._create(session, name, PASSWORD, role, actor="staff:root-admin")
    return {"username": created.username, "secret": created.totp_secret}


def test_bootstrap_works_only_while_no_staff_exists(admin) -> None:
    env = {"CARTGUARD_NEW_STAFF_PASSWORD": PASSWORD}
    again = CliRunner(mix_stderr=False).invoke(app, ["staff", "create-admin", "other"], env=env)
    assert again.exit_code == 1 and "already exist" in again.stderr
    with session_scope() as session, pytest.raises(staff.StaffError, match="already exist"):
        staff.create_first_admin(session, "second-admin", PASSWORD)


def test_right_factors_sign_in_and_the_same_code_never_works_twice(admin) -> None:
    code = _code(admin["secret"], T0)
    who = _login(admin["username"], PASSWORD, code, T0)
    assert who == staff.StaffIdentity("root-admin", Role.ADMINISTRATOR)
    assert _login(admin["username"], PASSWORD, code, T0 + 1) is None  # replay, same step
    # an older step's code (still inside the drift window) is a replay as well
    assert _login(admin["username"], PASSWORD, _code(admin["secret"], T0 - 30), T0 + 2) is None
    assert _login(admin["username"], PASSWORD, _code(admin["secret"], T0 + 30), T0 + 30)


@pytest.mark.parametrize(
    ("password", "code_offset", "case"),
    [("Wrong-lantern-42-meadow", 0, "wrong password"), (PASSWORD, 600, "wrong code")],
)
def test_wrong_password_or_code_is_refused(password: str, code_offset: int, case: str) -> None:
    account = _new_account(Role.VIEWER, f"viewer-{case.split()[1]}")
    at = T0 + 1000
    assert (
        _login(account["username"], password, _code(account["secret"], at + code_offset), at)
        is None
    )
    assert _login(account["username"], PASSWORD, "12345", at) is None  # malformed code
    # the right factors still work afterwards (only two failures so far)
    assert _login(account["username"], PASSWORD, _code(account["secret"], at + 30), at + 30)


def test_five_failures_lock_the_account_for_fifteen_minutes() -> None:
    account = _new_account(Role.MARKETER, "marketer-lock")
    at = T0 + 5000
    for n in range(5):
        assert _login(account["username"], "not-the-password-at-all", "000000", at + n) is None
    good = _code(account["secret"], at + 60)
    assert _login(account["username"], PASSWORD, good, at + 60) is None  # locked
    later = at + 16 * 60
    assert _login(account["username"], PASSWORD, _code(account["secret"], later), later)


def test_disabled_and_unknown_accounts_are_refused(admin) -> None:
    account = _new_account(Role.EDITOR, "editor-gone")
    by = staff.StaffIdentity("root-admin", Role.ADMINISTRATOR)
    with session_scope() as session:
        staff.set_disabled(session, by, "editor-gone", True)
    at = T0 + 9000
    assert _login(account["username"], PASSWORD, _code(account["secret"], at), at) is None
    assert _login("nobody-here", PASSWORD, "123456", at) is None
    with session_scope() as session:
        reasons = [
            (e.actor, e.details)
            for e in session.execute(
                select(AuditEntry).where(AuditEntry.action == "staff.login_failed")
            ).scalars()
        ]
    assert ("staff:editor-gone", '{"reason":"disabled"}') in reasons
    assert ("staff:?", '{"reason":"unknown_user"}') in reasons


def test_totp_secret_is_sealed_and_bound_to_its_account(admin) -> None:
    with session_scope() as session:
        row = session.execute(
            select(StaffAccount).where(StaffAccount.username == admin["username"])
        ).scalar_one()
        sealed, password_hash = row.totp_secret_enc, row.password_hash
    assert admin["secret"] not in sealed and PASSWORD not in password_hash
    assert password_hash.startswith("$argon2id$")
    assert staff.open_totp_secret(admin["username"], sealed) == admin["secret"]
    with pytest.raises(staff.StaffError, match="damaged"):
        staff.open_totp_secret("someone-else", sealed)  # copied onto another account


def test_last_administrator_cannot_be_demoted(admin) -> None:
    by = staff.StaffIdentity("root-admin", Role.ADMINISTRATOR)
    with session_scope() as session, pytest.raises(staff.StaffError, match="last active"):
        staff.set_role(session, by, "root-admin", Role.VIEWER)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Short-1", "at least 12"),
        ("password1234!", "too common"),
        ("Qwertyuiop2024", "too common"),
        ("aaaaaaaaaaaaaa", "more than two"),
        ("my-name-is-carol-ok", "username"),
    ],
)
def test_password_policy_refuses_weak_passwords(password: str, problem: str) -> None:
    assert any(problem in p for p in password_problems(password, "carol"))
    with pytest.raises(PasswordPolicyError):
        check_password_policy(password, "carol")


def test_password_policy_accepts_a_long_unusual_password() -> None:
    assert password_problems("Violet-harbour-19-tundra", "carol") == []
