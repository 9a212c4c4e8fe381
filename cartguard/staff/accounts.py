"""Staff accounts: creation, sign-in with password + TOTP, roles and permission checks.

Guarantees:

* a sign-in needs the right username, password *and* a current TOTP code that was not used
  before (the accepted time step is stored, so a replayed code fails even within its 30 s);
* every failure looks the same to the person signing in (no hint which factor was wrong),
  five consecutive failures lock the account for 15 minutes, and each failure is audited;
* the TOTP secret is stored only as AES-GCM ciphertext under the newest vault key, bound to
  the username, and shown once when the account is created;
* every staff action and every refusal lands in the hash-chained audit log.

Functions take the caller's session and never commit: the CLI commits, so a failed sign-in's
counter and audit entry are kept even though the command then stops.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cartguard import audit
from cartguard.keys import Keys, load_keys
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.staff import StaffAccount
from cartguard.staff.passwords import (
    check_password_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from cartguard.staff.roles import DESCRIPTIONS, Permission, Role, is_allowed

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
TOTP_ISSUER = "Cartguard staff"
_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
_CODE_RE = re.compile(r"^\d{6}$")

#: The one message for every failed sign-in, whatever went wrong.
SIGN_IN_FAILED = (
    "sign-in failed: the username, password or authenticator code is not right, "
    "or the account is locked or disabled. Try again with a new code in 30 seconds."
)


class StaffError(RuntimeError):
    """A staff operation could not be done; the message says why and what to do."""


class PermissionDenied(StaffError):
    """The signed-in role does not hold the permission the command needs."""


@dataclass(frozen=True)
class StaffIdentity:
    """Who is acting, after a successful sign-in."""

    username: str
    role: Role

    @property
    def actor(self) -> str:
        return f"staff:{self.username}"


@dataclass(frozen=True)
class NewStaff:
    """A freshly created account and its TOTP secret (show it once, never store it elsewhere)."""

    username: str
    role: Role
    totp_secret: str

    @property
    def provisioning_uri(self) -> str:
        return pyotp.TOTP(self.totp_secret).provisioning_uri(
            name=self.username, issuer_name=TOTP_ISSUER
        )


# --- TOTP secret sealing ------------------------------------------------------------------


def _aad(username: str) -> bytes:
    # binds the ciphertext to its account: copying a secret onto another row fails to decrypt
    return f"cartguard-staff-totp:{username}".encode()


def seal_totp_secret(username: str, secret: str, keys: Keys | None = None) -> str:
    keys = keys or load_keys()
    kid = keys.active_vault_key_id
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(keys.vault_keys[kid]).encrypt(nonce, secret.encode(), _aad(username))
    return f"{kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def open_totp_secret(username: str, blob: str, keys: Keys | None = None) -> str:
    keys = keys or load_keys()
    kid, _, payload = blob.partition(":")
    key = keys.vault_keys.get(kid)
    if key is None:
        raise StaffError(
            f"the authenticator secret of {username!r} was sealed with vault key {kid!r}, "
            "which is no longer configured; keep retired vault keys until staff re-enrol"
        )
    raw = base64.urlsafe_b64decode(payload.encode())
    try:
        return AESGCM(key).decrypt(raw[:12], raw[12:], _aad(username)).decode()
    except InvalidTag as exc:
        raise StaffError(f"the authenticator secret of {username!r} is damaged") from exc


# --- accounts -----------------------------------------------------------------------------


def normalize_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME_RE.match(name):
        raise StaffError(
            "a username is 3-64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def staff_count(session: Session) -> int:
    return session.execute(select(func.count(StaffAccount.id))).scalar_one()


def find_account(session: Session, username: str) -> StaffAccount | None:
    return session.execute(
        select(StaffAccount).where(StaffAccount.username == username.strip().lower())
    ).scalar_one_or_none()


def _create(session: Session, username: str, password: str, role: Role, actor: str) -> NewStaff:
    name = normalize_username(username)
    if find_account(session, name) is not None:
        raise StaffError(f"a staff account named {name!r} already exists")
    check_password_policy(password, name)
    secret = pyotp.random_base32()
    session.add(
        StaffAccount(
            username=name,
            role=role.value,
            password_hash=hash_password(password),
            totp_secret_enc=seal_totp_secret(name, secret),
            failed_attempts=0,
            disabled=False,
            created_at=utcnow(),
        )
    )
    session.flush()
    audit.record(
        session, actor, "staff.create", subject=f"staff:{name}", details={"role": role.value}
    )
    return NewStaff(username=name, role=role, totp_secret=secret)


def create_first_admin(session: Session, username: str, password: str) -> NewStaff:
    """Bootstrap: the first account, an Administrator; refused once any staff account exists."""
    if staff_count(session):
        raise StaffError(
            "staff accounts already exist: ask an Administrator to run `cartguard staff add`"
        )
    return _create(session, username, password, Role.ADMINISTRATOR, actor="system:bootstrap")


def create_staff(
    session: Session, by: StaffIdentity, username: str, password: str, role: Role
) -> NewStaff:
    require(session, by, Permission.STAFF_MANAGE)
    return _create(session, username, password, role, actor=by.actor)


def _managed_account(session: Session, by: StaffIdentity, username: str) -> StaffAccount:
    require(session, by, Permission.STAFF_MANAGE)
    account = find_account(session, username)
    if account is None:
        raise StaffError(f"there is no staff account named {username!r}")
    return account


def _active_admins(session: Session) -> int:
    return session.execute(
        select(func.count(StaffAccount.id)).where(
            StaffAccount.role == Role.ADMINISTRATOR.value, StaffAccount.disabled.is_(False)
        )
    ).scalar_one()


def set_role(session: Session, by: StaffIdentity, username: str, role: Role) -> None:
    account = _managed_account(session, by, username)
    if (
        account.role == Role.ADMINISTRATOR.value
        and role is not Role.ADMINISTRATOR
        and _active_admins(session) <= 1
    ):
        raise StaffError("refused: this is the last active Administrator; appoint another first")
    old = account.role
    account.role = role.value
    audit.record(
        session,
        by.actor,
        "staff.set_role",
        f"staff:{account.username}",
        {"from": old, "to": role.value},
    )


def set_disabled(session: Session, by: StaffIdentity, username: str, disabled: bool) -> None:
    account = _managed_account(session, by, username)
    if (
        disabled
        and account.role == Role.ADMINISTRATOR.value
        and not account.disabled
        and _active_admins(session) <= 1
    ):
        raise StaffError("refused: this is the last active Administrator")
    account.disabled = disabled
    if not disabled:  # re-enabling also lifts a lockout
        account.failed_attempts = 0
        account.locked_until = None
    action = "staff.disable" if disabled else "staff.enable"
    audit.record(session, by.actor, action, f"staff:{account.username}")


def change_own_password(
    session: Session, who: StaffIdentity, current_password: str, new_password: str
) -> None:
    require(session, who, Permission.OWN_PASSWORD)
    account = find_account(session, who.username)
    if account is None or not verify_password(account.password_hash, current_password):
        audit.record(session, who.actor, "staff.password_change_failed", who.actor)
        raise StaffError("the current password is not right; the password was not changed")
    check_password_policy(new_password, account.username)
    account.password_hash = hash_password(new_password)
    audit.record(session, who.actor, "staff.password_changed", who.actor)


def list_accounts(session: Session, by: StaffIdentity) -> list[StaffAccount]:
    require(session, by, Permission.STAFF_MANAGE)
    audit.record(session, by.actor, "staff.list")
    return list(session.execute(select(StaffAccount).order_by(StaffAccount.username)).scalars())


# --- sign-in ------------------------------------------------------------------------------


def _matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step (one step of drift either way) whose code equals ``code``, if any."""
    totp = pyotp.TOTP(secret)
    current = int(now // totp.interval)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.at(step * totp.interval), code):
            return step
    return None


def _fail(session: Session, account: StaffAccount | None, reason: str, now: datetime) -> None:
    actor = f"staff:{account.username}" if account is not None else "staff:?"
    if account is not None:
        account.failed_attempts = (account.failed_attempts or 0) + 1
        if account.failed_attempts >= MAX_FAILURES:
            account.locked_until = now + LOCKOUT
            account.failed_attempts = 0
            reason += "+locked"
    audit.record(session, actor, "staff.login_failed", details={"reason": reason})


def authenticate(
    session: Session, username: str, password: str, otp: str, *, now: float | None = None
) -> StaffIdentity | None:
    """Check all three factors; ``None`` on any failure (the caller shows SIGN_IN_FAILED).

    The password is always verified (against a dummy hash for unknown users) before anything
    else is looked at, so timing does not tell which usernames exist.
    """
    now_ts = time.time() if now is None else now
    now_dt = datetime.utcfromtimestamp(now_ts)
    account = find_account(session, username) if username else None
    password_ok = verify_password(account.password_hash if account else None, password)
    if account is None:
        _fail(session, None, "unknown_user", now_dt)
        return None
    if account.disabled:
        _fail(session, account, "disabled", now_dt)
        return None
    if account.locked_until is not None and account.locked_until > now_dt:
        audit.record(
            session, f"staff:{account.username}", "staff.login_failed", details={"reason": "locked"}
        )
        return None
    if not password_ok:
        _fail(session, account, "password", now_dt)
        return None
    code = (otp or "").strip().replace(" ", "")
    secret = open_totp_secret(account.username, account.totp_secret_enc)
    step = _matching_step(secret, code, now_ts) if _CODE_RE.match(code) else None
    if step is None:
        _fail(session, account, "otp", now_dt)
        return None
    if account.last_otp_step is not None and step <= account.last_otp_step:
        _fail(session, account, "otp_replayed", now_dt)
        return None
    account.last_otp_step = step
    account.failed_attempts = 0
    account.locked_until = None
    account.last_login_at = now_dt
    if needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    try:
        role = Role(account.role)
    except ValueError:
        _fail(session, account, "unknown_role", now_dt)
        return None
    return StaffIdentity(username=account.username, role=role)


def require(session: Session, who: StaffIdentity, permission: Permission) -> None:
    """Raise :class:`PermissionDenied` (and audit the refusal) unless ``who`` may do this."""
    if is_allowed(who.role, permission):
        return
    audit.record(session, who.actor, "staff.refused", details={"permission": permission.value})
    raise PermissionDenied(
        f"refused: the {who.role.value} role may not {DESCRIPTIONS[permission]}; "
        "ask an Administrator if you need this"
    )
