"""The SMTP client: real exchanges with the development mail catcher, and the ways it refuses.

Header injection through a name or an address, clear text to a remote server, a server that
accepts the connection and then says nothing (timeout), and notices whose transaction rolled
back: none of them may send anything.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from cartguard.notify import mail as mailer
from cartguard.notify import notices


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def catcher(tmp_path: Path, data_dir: Path) -> Iterator[tuple[Path, object]]:
    from cartguard.settings import get_settings
    from devtools import mail_catcher

    port = _free_port()
    controller = mail_catcher.start(port, tmp_path / "mail")
    settings = dataclasses.replace(get_settings(), smtp_port=port, smtp_starttls=False)
    try:
        yield tmp_path / "mail", settings
    finally:
        controller.stop()


def _kept(directory: Path) -> list:
    return [
        BytesParser(policy=policy.default).parse(path.open("rb"))
        for path in sorted(directory.glob("*.eml"))
    ]


def test_a_message_arrives_whole_and_names_are_cleaned(catcher) -> None:
    directory, settings = catcher
    message = mailer.compose(
        "robin@example.org",
        "notice_enrolled",
        name="Robin\r\nBcc: everyone@example.org\x1b[2J",
        shop_name="Cartguard Outdoor",
    )
    mailer.send(message, settings)
    [kept] = _kept(directory)
    assert kept["To"] == "robin@example.org" and kept["Bcc"] is None
    assert kept["Subject"] == "An authenticator app was set up for your Cartguard Outdoor account"
    body = kept.get_body(preferencelist=("plain",)).get_content()
    assert "\x1b" not in body and "Hello Robin Bcc: everyone@example.org," in body


@pytest.mark.parametrize(
    "address",
    ["robin@example.org\r\nBcc: x@example.org", "not an address", "", "a@b", "<a@example.org>"],
)
def test_addresses_we_cannot_send_to_are_refused(address: str) -> None:
    with pytest.raises(mailer.MailError):
        mailer.compose(address, "notice_enrolled", name="Robin", shop_name="Cartguard Outdoor")


def test_clear_text_to_a_remote_server_is_refused(data_dir) -> None:
    from cartguard.settings import get_settings

    settings = dataclasses.replace(
        get_settings(), smtp_host="mail.example.org", smtp_starttls=False
    )
    message = mailer.compose("robin@example.org", "notice_reset", name="R", shop_name="S")
    with pytest.raises(mailer.MailError, match="clear text"):
        mailer.send(message, settings)


def test_a_server_that_never_answers_times_out(data_dir) -> None:
    from cartguard.settings import get_settings

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    settings = dataclasses.replace(
        get_settings(), smtp_port=silent.getsockname()[1], smtp_timeout_seconds=1
    )
    message = mailer.compose("robin@example.org", "notice_reset", name="R", shop_name="S")
    try:
        with pytest.raises(mailer.MailError) as failed:
            mailer.send(message, settings)
        assert "robin" not in str(failed.value)  # the error names the server, not the person
    finally:
        for sock in [*accepted, silent]:
            sock.close()


def test_a_notice_is_sent_only_when_its_transaction_commits(catcher, monkeypatch) -> None:
    from cartguard.settings import get_settings
    from cartguard.shop.db import session_scope

    directory, settings = catcher
    monkeypatch.setenv("CARTGUARD_SMTP_PORT", str(settings.smtp_port))
    get_settings.cache_clear()
    try:
        with pytest.raises(RuntimeError), session_scope() as session:
            assert notices.notify(session, 1, notices.LOCKOUT, minutes=15)
            raise RuntimeError("the change failed")
        with session_scope() as session:
            assert notices.notify(session, 1, notices.LOCKOUT, minutes=10)
            session.rollback()  # the same session goes on after a rollback: that notice is gone
            assert notices.notify(session, 1, notices.LOCKOUT, minutes=15)
        assert mailer.wait_for_pending()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    [kept] = _kept(directory)
    assert "paused after wrong codes" in kept["Subject"]
    assert "15 minutes" in kept.get_body(preferencelist=("plain",)).get_content()


def test_repr_never_shows_the_body_or_the_address() -> None:
    message = mailer.compose(
        "robin@example.org",
        "enrol_confirm",
        name="Robin",
        shop_name="S",
        url="http://x/s/" + "A" * 43,
        minutes=30,
    )
    assert "A" * 43 in message.body
    assert "A" * 43 not in repr(message) and "robin" not in repr(message)
    assert mailer.mask_address("robin@example.org") == "r•••@example.org"


def test_the_chats_offer_can_e_mail_the_link_itself(catcher, monkeypatch) -> None:
    """What the step-up gate calls for a customer without an authenticator: the chat only
    says "we e-mailed you a link", and the link arrives once the action's transaction commits."""
    from sqlalchemy import delete

    from cartguard.settings import get_settings
    from cartguard.shop.db import session_scope
    from cartguard.shop.models import Customer, SecureLink
    from cartguard.stepup.enrolment import email_confirmation, remove_enrolment

    directory, settings = catcher
    monkeypatch.setenv("CARTGUARD_SMTP_PORT", str(settings.smtp_port))
    get_settings.cache_clear()
    try:
        with session_scope() as session:
            remove_enrolment(session, 3)
            session.execute(delete(SecureLink).where(SecureLink.customer_id == 3))
            address = session.get(Customer, 3).email
            request = email_confirmation(
                session, 3, conversation_id="conv-chat-offer", channel="socketio"
            )
            assert request.masked_address.endswith(address.split("@")[1])
            assert not list(directory.glob("*.eml"))  # nothing before the commit
        assert mailer.wait_for_pending()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    [kept] = _kept(directory)
    assert kept["To"] == address
    assert "/s/" in kept.get_body(preferencelist=("plain",)).get_content()
    with session_scope() as session:
        link = session.query(SecureLink).filter_by(customer_id=3, purpose="enrol_email").one()
        assert link.conversation_id == "conv-chat-offer"
