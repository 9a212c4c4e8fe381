"""Staff tools and dev-only commands: disable refuses step-up, unlock restores it, all audited."""

from __future__ import annotations

import inspect

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cartguard.cli import app
from cartguard.shop.db import session_scope
from cartguard.shop.models import AuditEntry
from cartguard.staff.roles import Role
from cartguard.stepup import admin
from cartguard.stepup.enrolment import enroll_demo_customers
from cartguard.stepup.service import StepUpService, StepUpStatus
from tests.staffcli import cli_as, make_staff

# click < 8.2 mixes stderr into stdout unless told otherwise; newer click always separates.
_SEPARATE = {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner).parameters else {}
runner = CliRunner(**_SEPARATE)


def test_disable_refuses_even_the_right_code_until_unlocked(
    db_session, secrets_by_customer, code_for, clock
):
    service = StepUpService(db_session)
    secret = secrets_by_customer[1]
    assert service.verify(1, "c-1", code_for(secret)).ok
    admin.disable(db_session, 1, actor="staff:tester")
    assert service.status(1, "c-1") is StepUpStatus.DISABLED  # the granted step-up is gone
    clock.advance(seconds=30)
    assert not service.verify(1, "c-1", code_for(secret)).ok
    admin.unlock(db_session, 1, actor="staff:tester")
    assert service.status(1, "c-1") is StepUpStatus.REQUIRED
    assert service.verify(1, "c-1", code_for(secret)).ok


def test_unlock_ends_a_lockout_early(db_session, secrets_by_customer, code_for):
    service = StepUpService(db_session)
    for _ in range(5):
        service.verify(2, "c-2", "000000" if code_for(secrets_by_customer[2]) != "000000" else "1")
    assert service.status(2, "c-2") is StepUpStatus.LOCKED
    admin.unlock(db_session, 2, actor="staff:tester")
    assert service.verify(2, "c-2", code_for(secrets_by_customer[2])).ok


def test_reset_removes_the_enrolment(db_session, secrets_by_customer):
    admin.reset(db_session, 1, actor="staff:tester")
    assert StepUpService(db_session).status(1, "c-1") is StepUpStatus.NOT_ENROLLED
    with pytest.raises(admin.NotEnrolled):
        admin.unlock(db_session, 1, actor="staff:tester")


@pytest.fixture()
def cli_customer(committed_customer) -> str:
    with session_scope() as session:
        enroll_demo_customers(session, [committed_customer])
    return str(committed_customer)


def test_totp_code_and_secret_print_with_dev_keys(cli_customer, clock, code_for):
    secret = runner.invoke(app, ["totp-secret", cli_customer])
    assert secret.exit_code == 0, secret.stderr
    code = runner.invoke(app, ["totp-code", cli_customer])
    assert code.exit_code == 0
    assert code.stdout.strip() == code_for(secret.stdout.strip())


def test_totp_commands_refuse_without_dev_keys(cli_customer, monkeypatch):
    # Any secret supplied from the environment means "not a dev installation".
    monkeypatch.setenv("CARTGUARD_MESSENGER_PAGE_TOKEN", "production-page-token-for-test")
    for command in ("totp-code", "totp-secret"):
        result = runner.invoke(app, [command, cli_customer])
        assert result.exit_code == 2
        assert "refused" in result.stderr
        assert result.stdout == ""


def test_totp_code_explains_a_customer_without_enrolment(committed_customer):
    result = runner.invoke(app, ["totp-code", str(committed_customer)])
    assert result.exit_code == 1
    assert "no active step-up enrolment" in result.stderr


@pytest.fixture(scope="module")
def administrator(data_dir) -> dict[str, str]:
    return make_staff(Role.ADMINISTRATOR)


def test_disable_and_unlock_commands_are_audited_as_the_signed_in_staff(
    cli_customer, administrator
):
    with session_scope() as session:
        before = session.execute(select(AuditEntry.seq).order_by(AuditEntry.seq.desc())).scalar()
    disabled = cli_as(administrator, ["stepup", "disable", cli_customer], LOGNAME="mallory")
    assert disabled.exit_code == 0, disabled.stderr
    with session_scope() as session:
        status = StepUpService(session).status(int(cli_customer), "c-cli")
    assert status is StepUpStatus.DISABLED
    assert cli_as(administrator, ["stepup", "unlock", cli_customer]).exit_code == 0
    shown = cli_as(administrator, ["stepup", "status", cli_customer])
    assert shown.exit_code == 0 and "disabled=False" in shown.stdout
    with session_scope() as session:
        entries = (
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.seq > (before or 0), AuditEntry.action.like("stepup.%"))
                .order_by(AuditEntry.seq)
            )
            .scalars()
            .all()
        )
        status = StepUpService(session).status(int(cli_customer), "c-cli")
    assert status is StepUpStatus.REQUIRED
    assert [e.action for e in entries] == ["stepup.disabled", "stepup.unlocked"]
    # the actor is the signed-in account, never the operating-system user (LOGNAME)
    assert {e.actor for e in entries} == {f"staff:{administrator['user']}"}
    assert all(e.subject == f"customer:{cli_customer}" for e in entries)


@pytest.mark.parametrize("command", ["disable", "unlock", "reset", "status"])
def test_stepup_staff_commands_refuse_without_sign_in(cli_customer, command):
    with session_scope() as session:
        before = admin.describe(session, int(cli_customer))
    result = cli_as(None, ["stepup", command, cli_customer], LOGNAME="anyone", USER="anyone")
    assert result.exit_code == 4 and "not signed in" in result.stderr
    with session_scope() as session:
        assert admin.describe(session, int(cli_customer)) == before


def test_a_role_without_stepup_manage_is_refused(cli_customer):
    moderator = make_staff(Role.MAILBOX_MODERATOR)
    result = cli_as(moderator, ["stepup", "reset", cli_customer])
    assert result.exit_code == 3 and "may not disable, unlock or reset" in result.stderr
    with session_scope() as session:
        assert admin.describe(session, int(cli_customer)).enrolled
