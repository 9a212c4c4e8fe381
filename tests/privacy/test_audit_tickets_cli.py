"""`audit verify` catches edits and deletions; moderators work tickets, seeing them redacted."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, select, update

from cartguard import audit
from cartguard.shop.db import session_scope
from cartguard.shop.models import AuditEntry, SupportTicket
from cartguard.shop.models._common import utcnow
from cartguard.staff.roles import Role


def _entry(session, seq: int) -> AuditEntry:
    return session.execute(select(AuditEntry).where(AuditEntry.seq == seq)).scalar_one()


@pytest.fixture()
def chain(staff_accounts) -> list[int]:
    """A few fresh entries at the end of the log; returns their sequence numbers."""
    with session_scope() as session:
        seqs = [audit.record(session, "system:test", "test.event", f"n:{n}").seq for n in range(3)]
    return seqs


def test_audit_verify_passes_on_an_untouched_log(staff_accounts, run_cli, chain) -> None:
    result = run_cli(staff_accounts[Role.ADMINISTRATOR], ["audit", "verify"])
    assert result.exit_code == 0, result.stderr
    assert "intact" in result.stdout
    shown = run_cli(staff_accounts[Role.ADMINISTRATOR], ["audit", "show", "--limit", "50"])
    assert "test.event" in shown.stdout and "audit.verify" in shown.stdout


def test_audit_verify_fails_after_an_entry_is_edited(staff_accounts, run_cli, chain) -> None:
    target = chain[1]
    with session_scope() as session:
        original = _entry(session, target).details
        session.execute(
            update(AuditEntry).where(AuditEntry.seq == target).values(details='{"forged":1}')
        )
    try:
        result = run_cli(staff_accounts[Role.ADMINISTRATOR], ["audit", "verify"])
        assert result.exit_code == 2
        assert f"entry {target}" in result.stderr
    finally:
        with session_scope() as session:
            session.execute(
                update(AuditEntry).where(AuditEntry.seq == target).values(details=original)
            )
    assert run_cli(staff_accounts[Role.ADMINISTRATOR], ["audit", "verify"]).exit_code == 0


def test_audit_verify_fails_after_an_entry_is_deleted(staff_accounts, run_cli, chain) -> None:
    target = chain[1]
    with session_scope() as session:
        row = _entry(session, target)
        saved = {c.name: getattr(row, c.name) for c in AuditEntry.__table__.columns}
        session.execute(delete(AuditEntry).where(AuditEntry.seq == target))
    try:
        result = run_cli(staff_accounts[Role.ADMINISTRATOR], ["audit", "verify"])
        assert result.exit_code == 2
        assert f"entry {target + 1}" in result.stderr  # the first entry after the gap
        assert f"entries {target} to {target} are missing" in result.stderr
    finally:
        with session_scope() as session:
            session.add(AuditEntry(**saved))
    assert run_cli(staff_accounts[Role.ADMINISTRATOR], ["audit", "verify"]).exit_code == 0


@pytest.fixture()
def ticket(staff_accounts) -> str:
    with session_scope() as session:
        session.add(
            SupportTicket(
                id="TK-55501",
                customer_id=2,
                conversation_id="c-55501",
                kind="handoff",
                status="open",
                summary="wants to talk about a refund",
                # a transcript that slipped through unredacted: staff must still not see it
                transcript="customer: reach me at lena.vogt@example.net or +1-202-555-1987",
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    yield "TK-55501"
    with session_scope() as session:
        session.execute(delete(SupportTicket).where(SupportTicket.id == "TK-55501"))


def test_moderator_lists_shows_redacted_and_answers(staff_accounts, run_cli, ticket) -> None:
    moderator = staff_accounts[Role.MAILBOX_MODERATOR]
    listed = run_cli(moderator, ["tickets", "list"])
    assert listed.exit_code == 0 and ticket in listed.stdout

    shown = run_cli(moderator, ["tickets", "show", ticket])
    assert shown.exit_code == 0, shown.stderr
    assert "refund" in shown.stdout
    assert "lena.vogt@example.net" not in shown.stdout and "555-1987" not in shown.stdout

    answered = run_cli(moderator, ["tickets", "answer", ticket, "We have refunded you."])
    assert answered.exit_code == 0, answered.stderr
    with session_scope() as session:
        row = session.get(SupportTicket, ticket)
        entry = session.execute(
            select(AuditEntry).where(AuditEntry.action == "tickets.answer")
        ).scalar_one()
    assert (row.status, row.reply) == ("answered", "We have refunded you.")
    assert entry.actor == f"staff:{moderator['user']}" and entry.subject == f"ticket:{ticket}"
    assert "refunded" not in entry.details and json.loads(entry.details) == {"status": "answered"}

    closed = run_cli(moderator, ["tickets", "answer", ticket, "Bye.", "--close"])
    assert closed.exit_code == 0
    again = run_cli(moderator, ["tickets", "answer", ticket, "Hello?"])
    assert again.exit_code == 1 and "closed" in again.stderr


def test_administrator_exports_to_a_private_file(staff_accounts, run_cli, tmp_path) -> None:
    target = tmp_path / "customer-1.json"
    result = run_cli(
        staff_accounts[Role.ADMINISTRATOR], ["privacy", "export", "1", "--output", str(target)]
    )
    assert result.exit_code == 0, result.stderr
    assert target.stat().st_mode & 0o777 == 0o600
    assert json.loads(target.read_text())["profile"]["id"] == 1
