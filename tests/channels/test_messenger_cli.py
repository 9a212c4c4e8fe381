"""Staff list and revoke Messenger links: ``cartguard channels messenger-links`` and
``messenger-unlink``, signed in, role-checked and audited; a revoked PSID is anonymous at once."""

from __future__ import annotations

from sqlalchemy import select

from cartguard.account_links import complete_linking, linked_customer
from cartguard.shop.db import session_scope
from cartguard.staff.roles import Role
from tests.staffcli import cli_as, make_staff

PSIDS = ("7100000000001111", "7100000000002222", "7100000000003333")


def link_all(customers: list[int]) -> None:
    with session_scope() as session:
        complete_linking(session, customers[0], PSIDS[0])
        complete_linking(session, customers[0], PSIDS[1])
        complete_linking(session, customers[1], PSIDS[2])


def test_an_administrator_lists_and_revokes_links_audited(channel_db) -> None:
    from cartguard.shop.models import AuditEntry

    link_all(channel_db)
    admin = make_staff(Role.ADMINISTRATOR)
    listed = cli_as(admin, ["channels", "messenger-links"])
    assert listed.exit_code == 0, listed.stderr
    assert "3 link(s)" in listed.stdout
    assert all(f"...{psid[-4:]}" in listed.stdout for psid in PSIDS)
    assert not any(psid in listed.stdout for psid in PSIDS)  # only the last digits are shown

    one = cli_as(admin, ["channels", "messenger-links", "--customer", str(channel_db[1])])
    assert "1 link(s)" in one.stdout and f"...{PSIDS[2][-4:]}" in one.stdout

    revoked = cli_as(admin, ["channels", "messenger-unlink", str(channel_db[0])])
    assert revoked.exit_code == 0, revoked.stderr
    with session_scope() as session:
        assert linked_customer(session, PSIDS[0]) is None
        assert linked_customer(session, PSIDS[1]) is None
        assert linked_customer(session, PSIDS[2]) == channel_db[1]
        entries = session.execute(
            select(AuditEntry.action, AuditEntry.actor).where(
                AuditEntry.action.in_(["messenger.links_listed", "messenger.unlink"])
            )
        ).all()
    assert {action for action, _ in entries} == {"messenger.links_listed", "messenger.unlink"}
    assert all(actor == f"staff:{admin['user']}" for _, actor in entries)
    after = cli_as(admin, ["channels", "messenger-links"])
    assert "1 link(s)" in after.stdout


def test_listing_links_needs_a_signed_in_administrator(channel_db) -> None:
    link_all(channel_db)
    nobody = cli_as(None, ["channels", "messenger-links"])
    viewer = cli_as(make_staff(Role.VIEWER), ["channels", "messenger-links"])
    for refused in (nobody, viewer):
        assert refused.exit_code != 0
        assert PSIDS[0][-4:] not in refused.stdout
