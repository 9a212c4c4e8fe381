"""Escape sequences a shopper types never reach a staff member's terminal (issue 14).

The attack: a shopper types ``ESC [2J`` (clear screen), an OSC 8 hyperlink, an 8-bit CSI or a
right-to-left override into the chat or a ticket; `tickets list|show` and `privacy transcript`
printed it unchanged, so the moderator's terminal obeyed it. The channels strip control
characters on the way in (another layer); stored text from before, or from another way in, is
stripped again when staff tools print it. Run through the installed command, no terminal.
"""

from __future__ import annotations

import json
import re

import pyotp
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from cartguard.cli.display import shopper_text, terminal_json
from cartguard.cli.signin import session_file
from cartguard.shop.db import session_scope
from cartguard.shop.models import SupportTicket
from cartguard.shop.models._common import utcnow
from cartguard.staff.roles import Role
from tests.staffcli import PASSWORD, installed_cli, make_staff

CLEAR_SCREEN = "\x1b[2J\x1b[1;1H"
HYPERLINK = "\x1b]8;;https://evil.example/pay\x1b\\pay here\x1b]8;;\x1b\\"
EIGHT_BIT_CSI = "\x9b31mred"
RIGHT_TO_LEFT = "\u202efdp.exe"
BELL_AND_CR = "\x07fake line\roverwritten"
TYPED = f"refund please {CLEAR_SCREEN}{HYPERLINK} {EIGHT_BIT_CSI} {RIGHT_TO_LEFT} {BELL_AND_CR}"
#: what a terminal would obey: C0 controls but newline and tab, DEL, C1, bidi overrides
OBEYED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _signed_in(privacy_env, role: Role) -> dict[str, str]:
    account = make_staff(role)
    login = installed_cli(
        ["staff", "login"],
        {
            "CARTGUARD_DATA_DIR": str(privacy_env),
            "CARTGUARD_STAFF_USER": account["user"],
            "CARTGUARD_STAFF_PASSWORD": PASSWORD,
            "CARTGUARD_STAFF_OTP": pyotp.TOTP(account["secret"]).now(),
        },
    )
    assert login.returncode == 0, login.stderr
    return {"CARTGUARD_DATA_DIR": str(privacy_env)}


def test_ticket_escape_sequences_are_absent_from_staff_output(privacy_env) -> None:
    with session_scope() as session:
        session.add(
            SupportTicket(
                id="TK-27001",
                customer_id=1,
                conversation_id="c-27001",
                kind="handoff",
                status="open",
                summary=TYPED,
                transcript=f"customer: {TYPED}\nassistant: one moment",
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    env = _signed_in(privacy_env, Role.MAILBOX_MODERATOR)
    try:
        listed = installed_cli(["tickets", "list"], env)
        shown = installed_cli(["tickets", "show", "TK-27001"], env)
    finally:
        installed_cli(["staff", "logout"], env)
        with session_scope() as session:
            session.execute(delete(SupportTicket).where(SupportTicket.id == "TK-27001"))
    for result in (listed, shown):
        assert result.returncode == 0, result.stderr
        assert "TK-27001" in result.stdout or "refund please" in result.stdout
        assert not OBEYED.search(result.stdout), repr(result.stdout)
        assert "evil.example" not in result.stdout  # the hidden link target is gone entirely
    assert "refund please" in shown.stdout and "pay here" in shown.stdout  # the words stay


def test_transcript_escape_sequences_are_absent_from_staff_output(
    privacy_env, add_conversation
) -> None:
    with session_scope() as session:
        conversation = add_conversation(session, 1, [(TYPED, "Sorry to hear that.")], utcnow())
    env = _signed_in(privacy_env, Role.VIEWER)
    try:
        shown = installed_cli(["privacy", "transcript", conversation], env)
    finally:
        installed_cli(["staff", "logout"], env)
        session_file().unlink(missing_ok=True)
    assert shown.returncode == 0, shown.stderr
    assert "refund please" in shown.stdout and "Sorry to hear that." in shown.stdout
    assert not OBEYED.search(shown.stdout), repr(shown.stdout)
    assert "\x1b" not in shown.stdout and "evil.example" not in shown.stdout


@settings(deadline=None, max_examples=150)
@given(st.text())
def test_shopper_text_leaves_nothing_a_terminal_obeys(text: str) -> None:
    cleaned = shopper_text(text)
    assert not OBEYED.search(cleaned)
    assert shopper_text(cleaned) == cleaned  # stripping twice changes nothing


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(deadline=None, max_examples=150)
@given(_json_values)
def test_terminal_json_is_the_same_data_without_raw_controls(data) -> None:
    printed = terminal_json(data)
    assert json.loads(printed) == data  # an export stays faithful...
    assert not OBEYED.search(printed.replace("\n", ""))  # ...and nothing in it drives a terminal
