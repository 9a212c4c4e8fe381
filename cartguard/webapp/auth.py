"""The demo shop login: argon2 password hashes, server-side sessions behind a signed cookie.

A session cookie holds a random id and an HMAC of it (keyed with ``session_key``), so a forged or
altered cookie is rejected before the database is asked; the table stores only a SHA-256 of the
id, and logging out revokes the row, so a stolen cookie stops working at logout or expiry.

Demo passwords are random per install and written to ``<data_dir>/demo-logins.json`` (mode 0600)
so ``make run`` can print them; the database keeps only their hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from cartguard.settings import Settings, get_settings
from cartguard.shop.models import Customer
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.web import WebLogin, WebSession

SESSION_COOKIE = "cg_session"
DEMO_LOGINS_FILE = "demo-logins.json"
MAX_PASSWORD_CHARS = 256  # hashing megabytes would be a cheap denial of service

_hasher = PasswordHasher()
#: verified against when the e-mail is unknown, so both answers take the same time
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


# --- demo logins -----------------------------------------------------------------------------


def demo_logins_path(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).data_dir / DEMO_LOGINS_FILE


def _read_demo_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_demo_file(path: Path, logins: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(logins, fh, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _new_password() -> str:
    # four groups of six hex digits: easy to type from a terminal, 96 random bits
    return "-".join(secrets.token_hex(3) for _ in range(4))


def create_demo_logins(
    session: Session, customer_ids: list[int] | tuple[int, ...], settings: Settings | None = None
) -> dict[str, str]:
    """Ensure each customer has a demo login; return ``{email: password}`` for all of them.

    Existing logins keep their password when the demo file still knows it; a login whose
    password was lost (file deleted) gets a new one, since a hash cannot be turned back.
    """
    path = demo_logins_path(settings)
    known = _read_demo_file(path)
    result: dict[str, str] = {}
    for customer_id in customer_ids:
        customer = session.get(Customer, customer_id)
        if customer is None:
            continue
        login = session.get(WebLogin, customer_id)
        email = customer.email.strip().lower()
        password = known.get(email) if login is not None and login.email == email else None
        if password is None or not _verify(login.password_hash if login else "", password):
            password = _new_password()
            if login is None:
                login = WebLogin(customer_id=customer_id, email=email, password_hash="")
                session.add(login)
            login.email = email
            login.password_hash = _hasher.hash(password)
        result[email] = password
    session.flush()
    known.update(result)
    _write_demo_file(path, known)
    return result


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def authenticate(session: Session, email: str, password: str) -> int | None:
    """Customer id for a correct e-mail and password, else ``None`` (same work either way)."""
    email = (email or "").strip().lower()[:320]
    password = (password or "")[:MAX_PASSWORD_CHARS]
    login = session.execute(select(WebLogin).where(WebLogin.email == email)).scalar_one_or_none()
    if login is None:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(login.password_hash, password):
        return None
    if _hasher.check_needs_rehash(login.password_hash):
        login.password_hash = _hasher.hash(password)
    login.last_login_at = utcnow()
    return login.customer_id


# --- sessions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebIdentity:
    customer_id: int
    customer_name: str
    #: when the shop session ends; a chat token issued for it never outlives it
    expires_at: datetime | None = None


def _sign(session_id: str, key: bytes) -> str:
    mac = hmac.new(key, f"web-session|{session_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start_session(session: Session, customer_id: int, key: bytes, lifetime: timedelta) -> str:
    """Create a session row and return the cookie value ``<id>.<signature>``."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        WebSession(
            id_hash=_digest(session_id),
            customer_id=customer_id,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return f"{session_id}.{_sign(session_id, key)}"


def _parse_cookie(cookie: str | None, key: bytes) -> str | None:
    if not cookie or len(cookie) > 200 or "." not in cookie:
        return None
    session_id, signature = cookie.rsplit(".", 1)
    if not hmac.compare_digest(signature, _sign(session_id, key)):
        return None
    return session_id


def identify(session: Session, cookie: str | None, key: bytes) -> WebIdentity | None:
    """The logged-in customer behind a cookie, or ``None`` for forged, expired or revoked ones."""
    session_id = _parse_cookie(cookie, key)
    if session_id is None:
        return None
    row = session.get(WebSession, _digest(session_id))
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    customer = session.get(Customer, row.customer_id)
    if customer is None:
        return None
    return WebIdentity(
        customer_id=customer.id, customer_name=customer.name, expires_at=row.expires_at
    )


def session_ref(cookie: str | None, key: bytes) -> str | None:
    """The reference a chat token carries to its shop session (the row key, not the cookie).

    Logging out revokes that row, and with it every chat token issued for the session.
    """
    session_id = _parse_cookie(cookie, key)
    return _digest(session_id) if session_id is not None else None


def end_session(session: Session, cookie: str | None, key: bytes) -> None:
    session_id = _parse_cookie(cookie, key)
    if session_id is None:
        return
    row = session.get(WebSession, _digest(session_id))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()


def purge_expired_sessions(session: Session, now: datetime | None = None) -> int:
    """Delete sessions that ended more than a day ago (they only tell who logged in when)."""
    cutoff = (now or utcnow()) - timedelta(days=1)
    rows = session.execute(select(WebSession).where(WebSession.expires_at < cutoff)).scalars().all()
    for row in rows:
        session.delete(row)
    return len(rows)


def owner_pseudonym(customer_id: int, key: bytes) -> str:
    """A stable, meaningless label for "this account" that the page may keep in the browser."""
    return hmac.new(key, f"chat-owner|{customer_id}".encode(), hashlib.sha256).hexdigest()[:24]
