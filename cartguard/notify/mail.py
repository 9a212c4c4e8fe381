"""Composing and sending e-mail over SMTP (``smtplib``), with timeouts and TLS where it matters.

* **Messages** are plain text, rendered from the templates next to this module (first line
  ``Subject: ...``, a blank line, then the body). Every value becomes one line without control
  characters, and the recipient must be a bare address, so a customer name or address cannot
  inject headers or terminal sequences.
* **Sending** connects to ``CARTGUARD_SMTP_HOST``:``CARTGUARD_SMTP_PORT`` with a timeout on the
  connection and every command; a server that is not on this machine gets STARTTLS (with
  certificate checks) and, when ``CARTGUARD_SMTP_USER`` is set, a login. Plain text to a remote
  server is refused rather than sent. Any failure is one :class:`MailError` whose message names
  the server, never the recipient or the content (the content may hold a single-use link).
* **After commit.** :func:`send_after_commit` sends only once the caller's transaction has
  committed (a notice about a lockout that was rolled back is never sent), in a background
  thread so the caller never waits on the mail server; failures are logged.

In development ``python -m devtools.mail_catcher`` listens on 127.0.0.1:8025 and keeps every
message as a file; ``cartguard dev mail`` lists and prints them.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import event
from sqlalchemy.orm import Session

from cartguard.control_chars import strip_control_chars
from cartguard.settings import Settings, get_settings

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_ADDRESS = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$|^[^@\s<>\"',;]+@localhost$")
_PENDING_KEY = "cartguard_mail_after_commit"
_MAX_SUBJECT = 200

# Plain-text e-mail, not HTML: there is no markup to escape into.
_environment = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=False,  # noqa: S701
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
_threads: set[threading.Thread] = set()
_threads_lock = threading.Lock()


class MailError(RuntimeError):
    """The message could not be handed to the mail server (or was refused before trying)."""


@dataclass(frozen=True)
class OutgoingMail:
    """One message, ready to send. Its body may hold a single-use link: keep it out of logs."""

    to: str
    subject: str
    body: str
    kind: str  # the template name, for logs

    def __repr__(self) -> str:
        return f"OutgoingMail(kind={self.kind!r}, to=<hidden>)"


def mask_address(address: str) -> str:
    """``j•••@example.com``: enough for a shopper to recognise their address, little more."""
    local, _, domain = (address or "").partition("@")
    if not local or not domain:
        return "the address on your account"
    return f"{local[0]}•••@{domain}"


def _clean(value: Any) -> Any:
    """Template values are one line of plain text: no control characters, no line breaks."""
    return " ".join(strip_control_chars(value).split()) if isinstance(value, str) else value


def compose(to: str, template: str, **context: Any) -> OutgoingMail:
    """Render ``templates/<template>.txt`` for ``to`` (:class:`MailError` for a bad address)."""
    address = parseaddr(to or "")[1]
    if not address or not _ADDRESS.match(address) or address != (to or "").strip():
        raise MailError("the e-mail address on file is not one we can send to")
    text = _environment.get_template(f"{template}.txt").render(
        **{key: _clean(value) for key, value in context.items()}
    )
    head, _, body = text.partition("\n\n")
    if not head.startswith("Subject: "):
        raise MailError(f"mail template {template!r} must start with a 'Subject: ' line")
    subject = " ".join(head.removeprefix("Subject: ").split())[:_MAX_SUBJECT]
    return OutgoingMail(to=address, subject=subject, body=body.strip() + "\n", kind=template)


def _message(mail: OutgoingMail, settings: Settings) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    sender_domain = parseaddr(settings.smtp_from)[1].partition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=sender_domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.body, charset="utf-8")
    return message


def send(mail: OutgoingMail, settings: Settings | None = None) -> None:
    """Hand ``mail`` to the configured SMTP server now (blocking, bounded by the timeout)."""
    settings = settings or get_settings()
    host, port = settings.smtp_host, settings.smtp_port
    where = f"{host}:{port}"
    if host not in _LOOPBACK and not settings.smtp_starttls:
        raise MailError(
            f"refusing to send e-mail in clear text to {where}: set CARTGUARD_SMTP_STARTTLS=1 "
            "(the default for any server not on this machine)"
        )
    message = _message(mail, settings)
    try:
        with smtplib.SMTP(host, port, timeout=settings.smtp_timeout_seconds) as smtp:
            smtp.ehlo()
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            refused = smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        reason = exc.__class__.__name__
        raise MailError(f"the mail server {where} did not take the message ({reason})") from exc
    if refused:
        raise MailError(f"the mail server {where} refused the recipient")
    log.info("mail sent: %s via %s", mail.kind, where)


# --- after commit -------------------------------------------------------------------------------


def _deliver(mails: list[OutgoingMail]) -> None:
    for mail in mails:
        try:
            send(mail)
        except MailError as exc:
            log.error("mail not sent: %s (%s)", mail.kind, exc)
        except Exception:  # a notice must never take a worker down
            log.exception("mail not sent: %s", mail.kind)


def _start(mails: list[OutgoingMail]) -> None:
    # Not a daemon: a command-line process finishes sending before it exits.
    thread = threading.Thread(target=_deliver, args=(mails,), name="cartguard-mail")
    with _threads_lock:
        _threads.add(thread)
    thread.start()


def _after_commit(session: Session) -> None:
    mails = session.info.pop(_PENDING_KEY, None)
    if mails:
        _start(mails)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


def send_after_commit(session: Session, mail: OutgoingMail) -> None:
    """Send ``mail`` once ``session`` commits (in the background); never if it rolls back."""
    if not session.info.get("cartguard_mail_hooked"):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)
        session.info["cartguard_mail_hooked"] = True
    session.info.setdefault(_PENDING_KEY, []).append(mail)


def wait_for_pending(timeout: float = 30.0) -> bool:
    """Wait until background sends finished (tests, and commands about to exit)."""
    with _threads_lock:
        threads = list(_threads)
    for thread in threads:
        thread.join(timeout)
    with _threads_lock:
        _threads.difference_update(t for t in threads if not t.is_alive())
        return not any(t.is_alive() for t in _threads)
