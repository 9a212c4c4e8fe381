"""Staff accounts for the admin CLI: a role, an argon2 password hash and an encrypted TOTP secret.

The table holds no plaintext secret: the password is an argon2id hash and the TOTP secret is
AES-GCM ciphertext under a vault key (see :mod:`cartguard.staff.accounts`). ``last_otp_step``
remembers the time step of the last accepted code so that a code seen over someone's
shoulder cannot be used a second time.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Integer, String, Text

from cartguard.shop.models._common import Base
from cartguard.shop.models._common import utcnow


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
