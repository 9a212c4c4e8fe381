"""Staff accounts for the admin CLI: a role, an argon2 password hash and an encrypted TOTP secret.

The table holds no plaintext secret: the password is an argon2id hash and the TOTP secret is
AES-GCM ciphertext under a vault key (see :mod:`cartguard.staff.accounts`). ``last_otp_step``
remembers the time step of the last accepted code so that a code seen over someone's
shoulder cannot be used a second time.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Integer, String, Text

from cartguard.shop.models._common import Base, utcnow


class StaffAccount(Base):
    __tablename__ = "staff_accounts"

    id = Column(Integer, primary_key=True)
    username = Column(String(64), nullable=False, unique=True)
    role = Column(String(32), nullable=False)  # a value of cartguard.staff.roles.Role
    password_hash = Column(String(255), nullable=False)
    totp_secret_enc = Column(Text, nullable=False)  # "<key id>:<base64 nonce+ciphertext>"
    last_otp_step = Column(Integer, nullable=True)
    failed_attempts = Column(Integer, nullable=False, default=0)
    locked_until = Column(DateTime, nullable=True)
    disabled = Column(Boolean, nullable=False, default=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    last_login_at = Column(DateTime, nullable=True)


class StaffSession(Base):
    """A signed-in staff session (15 minutes) or a scoped service credential (for cron).

    Only a SHA-256 of the token is stored: the token itself lives in a 0600 file of the
    person (or job) holding it. ``revoked_at`` ends it early (``cartguard staff logout``,
    ``service-token revoke``, an account disabled).
    """

    __tablename__ = "staff_sessions"

    id = Column(Integer, primary_key=True)
    token_hash = Column(String(64), nullable=False, unique=True)
    kind = Column(String(16), nullable=False)  # "session" or "service"
    name = Column(String(64), nullable=False, index=True)  # staff username / service name
    scopes = Column(Text, nullable=False, default="")  # service: comma-separated permissions
    created_by = Column(String(80), nullable=False)  # actor that opened or issued it
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)
    last_used_at = Column(DateTime, nullable=True)
    revoked_at = Column(DateTime, nullable=True)
