"""Enrolment is confirmed out of band: a stolen password (or chat) alone never enrols.

The attack from the issue: a phished password, a shop session, the chat's enrolment offer or
``/account/2fa``, and the attacker's own authenticator app. Here the first step only e-mails a
single-use link to the address on file; the QR code appears only to the signed-in customer
who opened that link, and only after a POST (mail scanners open links with GET). A real SMTP
exchange reaches the development mail catcher (``devtools/mail_catcher.py``) on a free port.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from webharness import Browser, FakeRasa, free_port, issue, wait_for

from cartguard.shop.db import session_scope
from cartguard.shop.models import Customer, StepUpEnrolment
from cartguard.shop.models._common import utcnow

LINK = re.compile(r"https?://\S+/s/([A-Za-z0-9_-]{43})")
SECRET = re.compile(r'<code class="secret">([A-Z2-7]+)</code>')


class Mailbox:
    """What the mail catcher kept, as parsed messages."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def messages(self, to: str | None = None) -> list[EmailMessage]:
        found = []
        for path in sorted(self.directory.glob("*.eml")):
            with path.open("rb") as handle:
                message = BytesParser(policy=policy.default).parse(handle)
            if to is None or message["To"] == to:
                found.append(message)
        return found

    def wait_for(self, to: str, count: int) -> list[EmailMessage]:
        return wait_for(lambda: len(self.messages(to)) >= count and self.messages(to))

    @staticmethod
    def body(message: EmailMessage) -> str:
        return message.get_body(preferencelist=("plain",)).get_content()

    def link_token(self, message: EmailMessage) -> str:
        match = LINK.search(self.body(message))
        assert match, "the confirmation e-mail has no link"
        return match.group(1)


@pytest.fixture(scope="module")
def mailbox(data_dir: Path) -> Iterator[Mailbox]:
    """The development mail catcher on a free port, keeping mail under <data dir>/mail."""
    from cartguard.settings import get_settings
    from devtools import mail_catcher

    directory = mail_catcher.mail_dir(data_dir)
    port = free_port()
    controller = mail_catcher.start(port, directory)
    os.environ["CARTGUARD_SMTP_PORT"] = str(port)
    get_settings.cache_clear()
    try:
        yield Mailbox(directory)
    finally:
        controller.stop()
        os.environ.pop("CARTGUARD_SMTP_PORT", None)
        get_settings.cache_clear()


def _fresh(customer_id: int) -> str:
    """Customer without an authenticator (and without e-mails sent this hour); their address."""
    from sqlalchemy import delete

    from cartguard.shop.models import SecureLink
    from cartguard.stepup.enrolment import remove_enrolment

    with session_scope() as session:
        remove_enrolment(session, customer_id)
        session.execute(
            delete(SecureLink).where(
                SecureLink.customer_id == customer_id, SecureLink.purpose == "enrol_email"
            )
        )
        return session.get(Customer, customer_id).email


def _enrolment_row(customer_id: int) -> tuple | None:
    with session_scope() as session:
        row = session.get(StepUpEnrolment, customer_id)
        return None if row is None else (row.secret_ref, row.confirmed_at)


def _code(secret: str, shift: int = 0) -> str:
    from cartguard.stepup import totp

    code = totp.current_code(secret, utcnow())
    return f"{(int(code) + shift) % 1_000_000:06d}"


def test_a_password_only_session_cannot_enrol(
    browser: Browser, demo_logins, mailbox: Mailbox
) -> None:
    address = _fresh(4)
    browser.login(*demo_logins[4])  # the attacker has the password, not the mailbox
    chat_link, _ = issue("enrol", 4)  # and the chat's enrolment offer
    pages = [
        browser.get("/account/2fa"),
        browser.get(f"/s/{chat_link}"),
        browser.submit("/account/2fa", {"code": "123456", "step": "start"}),
        browser.submit(f"/s/{chat_link}", {"code": "123456", "step": "start"}),
    ]
    for page in pages:
        assert page.status_code == 200, page.text[:300]
        assert not SECRET.search(page.text) and "data:image/png" not in page.text
    assert "We e-mailed a link to" in pages[2].text and "We e-mailed a link to" in pages[3].text
    assert _enrolment_row(4) is None  # not even a pending secret
    sent = mailbox.wait_for(address, 2)
    assert len(sent) == 2  # both links went to the address on file, not to the attacker
    assert all("/s/" in Mailbox.body(m) for m in sent)
    with session_scope() as session:
        from cartguard.stepup.service import StepUpService, StepUpStatus

        assert StepUpService(session).status(4, "conv-attacker") is StepUpStatus.NOT_ENROLLED


def test_the_emailed_link_sets_up_the_authenticator_and_tells_the_chat(
    browser: Browser, demo_logins, mailbox: Mailbox, fake: FakeRasa, web
) -> None:
    address = _fresh(3)
    browser.login(*demo_logins[3])
    chat_link, conversation = issue("enrol", 3)
    offer = browser.get(f"/s/{chat_link}")
    masked = f"{address[0]}•••@{address.split('@')[1]}"
    assert masked in offer.text and address not in offer.text
    sent = browser.submit(f"/s/{chat_link}", {})
    assert sent.status_code == 200 and "Check your e-mail" in sent.text
    [mail] = mailbox.wait_for(address, 1)
    assert "Confirm: set up two-step verification" in mail["Subject"]
    token = mailbox.link_token(mail)

    # A mail scanner (no session) and the shopper's own GETs change nothing.
    assert Browser(web.base_url).get(f"/s/{token}").status_code == 401
    for _ in range(2):
        confirm = browser.get(f"/s/{token}")
        assert confirm.status_code == 200 and "Show my QR code" in confirm.text
        assert not SECRET.search(confirm.text)
    assert _enrolment_row(3) is None

    shown = browser.submit(f"/s/{token}", {"step": "start"})
    secret = SECRET.search(shown.text).group(1)
    assert 'src="data:image/png;base64,' in shown.text
    pending = _enrolment_row(3)
    assert pending is not None and pending[1] is None
    reopened = browser.get(f"/s/{token}")  # GET again: the pending secret is kept, not shown
    assert secret not in reopened.text and _enrolment_row(3) == pending

    wrong = browser.post(
        f"/s/{token}", {"step": "code", "code": _code(secret, 7), "csrf_token": browser.csrf()}
    )
    assert wrong.status_code == 400 and secret not in wrong.text
    right = browser.post(
        f"/s/{token}", {"step": "code", "code": _code(secret), "csrf_token": browser.csrf()}
    )
    assert right.status_code == 200 and "Two-step verification is on" in right.text
    from cartguard.stepup.enrolment import is_enrolled

    with session_scope() as session:
        assert is_enrolled(session, 3)
    assert [c["name"] for c in wait_for(lambda: fake.calls_for(conversation))] == [
        "EXTERNAL_enrolled"
    ]
    notice = mailbox.wait_for(address, 2)[-1]
    assert "An authenticator app was set up" in notice["Subject"]
    assert "/s/" not in Mailbox.body(notice)
    again = browser.post(f"/s/{token}", {"step": "start", "csrf_token": browser.csrf()})
    assert again.status_code == 410  # single use


def test_the_emailed_link_works_only_for_its_customer_signed_in(
    browser: Browser, demo_logins, mailbox: Mailbox, web
) -> None:
    address = _fresh(2)
    owner = Browser(web.base_url)
    owner.login(*demo_logins[2])
    assert owner.submit("/account/2fa", {}).status_code == 200
    token = mailbox.link_token(mailbox.wait_for(address, 1)[0])
    browser.login(*demo_logins[1])  # someone else's session
    assert browser.get(f"/s/{token}").status_code == 403
    refused = browser.post(f"/s/{token}", {"step": "start", "csrf_token": browser.csrf()})
    assert refused.status_code == 403 and not SECRET.search(refused.text)
    assert _enrolment_row(2) is None
    assert owner.get(f"/s/{token}").status_code == 200  # still there for its owner


def test_confirmation_emails_are_limited_per_hour(
    browser: Browser, demo_logins, mailbox: Mailbox
) -> None:
    from cartguard.stepup.enrolment import MAX_EMAILS_PER_HOUR

    address = _fresh(1)
    before = len(mailbox.messages(address))
    browser.login(*demo_logins[1])
    answers = [browser.submit("/account/2fa", {}) for _ in range(MAX_EMAILS_PER_HOUR + 1)]
    assert [a.status_code for a in answers] == [200] * MAX_EMAILS_PER_HOUR + [429]
    assert "already sent several" in answers[-1].text
    mailbox.wait_for(address, before + MAX_EMAILS_PER_HOUR)
    assert len(mailbox.messages(address)) == before + MAX_EMAILS_PER_HOUR


def test_a_mail_server_that_is_down_is_reported_and_nothing_is_set_up(
    browser: Browser, demo_logins, mailbox: Mailbox, monkeypatch
) -> None:
    from cartguard.settings import get_settings

    _fresh(4)
    browser.login(*demo_logins[4])
    monkeypatch.setenv("CARTGUARD_SMTP_PORT", str(free_port()))  # nothing listens there
    get_settings.cache_clear()
    try:
        page = browser.submit("/account/2fa", {})
    finally:
        monkeypatch.setenv("CARTGUARD_SMTP_PORT", os.environ["CARTGUARD_SMTP_PORT"])
        monkeypatch.undo()
        get_settings.cache_clear()
    assert page.status_code == 503
    assert "couldn&#39;t send the e-mail" in page.text
    assert _enrolment_row(4) is None


def test_a_staff_reset_sends_a_notice_and_needs_a_new_emailed_confirmation(
    browser: Browser, demo_logins, mailbox: Mailbox
) -> None:
    from cartguard.notify.mail import wait_for_pending
    from cartguard.stepup import admin
    from cartguard.stepup.enrolment import enroll_demo_customers

    address = _fresh(2)
    with session_scope() as session:
        enroll_demo_customers(session, [2])
    before = len(mailbox.messages(address))
    with session_scope() as session:
        admin.reset(session, 2, actor="staff:test")
    assert wait_for_pending()
    notice = mailbox.wait_for(address, before + 1)[-1]
    assert "reset" in notice["Subject"]
    browser.login(*demo_logins[2])
    page = browser.get("/account/2fa")
    assert "E-mail me the link" in page.text and not SECRET.search(page.text)


def test_kept_mail_is_private_and_the_dev_command_prints_the_link(
    mailbox: Mailbox, demo_logins, browser: Browser
) -> None:
    from typer.testing import CliRunner

    from cartguard.cli import app

    address = _fresh(1)
    browser.login(*demo_logins[1])
    browser.submit("/account/2fa", {})
    mail = mailbox.wait_for(address, 1)[-1]
    assert stat.S_IMODE(mailbox.directory.stat().st_mode) == 0o700
    for path in mailbox.directory.glob("*.eml"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    listing = CliRunner().invoke(app, ["dev", "mail"])
    assert listing.exit_code == 0 and mail["Subject"] in listing.output
    shown = CliRunner().invoke(app, ["dev", "mail", "last"])
    assert shown.exit_code == 0, shown.output
    assert f"To: {address}" in shown.output and mailbox.link_token(mail) in shown.output
