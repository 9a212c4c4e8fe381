"""Each role may run exactly the commands docs/staff-roles.md grants it, through the real CLI."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from cartguard.settings import PROJECT_ROOT
from cartguard.shop.db import session_scope
from cartguard.shop.models import AuditEntry
from cartguard.staff.roles import PERMISSIONS, Permission, Role, is_allowed

DOC = PROJECT_ROOT / "docs" / "staff-roles.md"

#: command line -> the permission it needs (arguments chosen so an allowed run changes nothing)
COMMANDS: list[tuple[list[str], Permission]] = [
    (["privacy", "export", "987654321"], Permission.CUSTOMER_EXPORT),
    (["privacy", "erase", "987654321", "--yes"], Permission.CUSTOMER_ERASE),
    (["staff", "list"], Permission.STAFF_MANAGE),
    (["staff", "disable", "no-such-person"], Permission.STAFF_MANAGE),
    (["audit", "show", "--limit", "3"], Permission.AUDIT_READ),
    (["audit", "verify"], Permission.AUDIT_VERIFY),
    (["tickets", "list", "--status", "all"], Permission.TICKETS_READ),
    (["tickets", "show", "TK-00000"], Permission.TICKETS_READ),
    (["tickets", "answer", "TK-00000", "Thanks, sorted."], Permission.TICKETS_ANSWER),
    (["privacy", "transcript", "no-such-conversation"], Permission.TRANSCRIPTS_READ_REDACTED),
    (["privacy", "stats"], Permission.STATS_READ),
]


def _doc_table() -> dict[str, dict[str, bool]]:
    lines = DOC.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| permission | Admin"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    table = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        table[cells[0]] = {
            role: {"yes": True, "no": False}[cell]
            for role, cell in zip(header[1:], cells[1:], strict=True)
        }
    return table


def test_the_documented_table_is_the_enforced_table() -> None:
    documented = _doc_table()
    in_code = {
        perm.value: {role.value: role in roles for role in Role}
        for perm, roles in PERMISSIONS.items()
    }
    assert documented == in_code
    assert set(PERMISSIONS) == set(Permission)


def test_no_role_can_read_vault_plaintext_and_viewer_only_reads_redacted() -> None:
    assert not [p for p in Permission if re.search("vault|plaintext|detokeni", p.value)]
    viewer = {p for p in Permission if is_allowed(Role.VIEWER, p)}
    assert viewer == {Permission.TRANSCRIPTS_READ_REDACTED, Permission.OWN_PASSWORD}
    assert [r for r in Role if is_allowed(r, Permission.CUSTOMER_ERASE)] == [Role.ADMINISTRATOR]
    assert not is_allowed("Superuser", Permission.STATS_READ)


def _refusals() -> int:
    with session_scope() as session:
        return session.execute(
            select(func.count(AuditEntry.id)).where(AuditEntry.action == "staff.refused")
        ).scalar_one()


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_each_role_is_allowed_and_refused_per_the_table(staff_accounts, run_cli, role) -> None:
    for args, permission in COMMANDS:
        before = _refusals()
        result = run_cli(staff_accounts[role], args)
        command = " ".join(args)
        if is_allowed(role, permission):
            assert result.exit_code in (0, 1), f"{role.value} {command}: {result.stderr}"
            assert "refused" not in result.stderr, f"{role.value} wrongly refused: {command}"
            assert _refusals() == before
        else:
            assert result.exit_code == 3, f"{role.value} was not refused: {command}"
            assert f"the {role.value} role may not" in result.stderr
            assert _refusals() == before + 1  # the refusal is in the audit log


def test_sign_in_failures_look_the_same_and_exit_4(staff_accounts, run_cli) -> None:
    admin = staff_accounts[Role.ADMINISTRATOR]
    outcomes = [
        run_cli(admin, ["audit", "verify"], **wrong)
        for wrong in (
            {"CARTGUARD_STAFF_PASSWORD": "Wrong-thimble-63-orchard"},
            {"CARTGUARD_STAFF_OTP": "000000"},
            {"CARTGUARD_STAFF_USER": "no-such-user"},
        )
    ]
    assert {result.exit_code for result in outcomes} == {4}
    assert len({result.stderr for result in outcomes}) == 1  # no hint which factor was wrong
