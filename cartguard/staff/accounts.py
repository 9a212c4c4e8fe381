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

import hmac
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cartguard import audit
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.staff import StaffAccount, StaffSession
from cartguard.staff.passwords import (
    check_password_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from cartguard.staff.roles import DESCRIPTIONS, SERVICE_SCOPES, Permission, Role, is_allowed
from cartguard.vault import VaultError, get_vault, staff_totp_aad

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
    """Who is acting, after a successful sign-in (or a scoped service credential, for cron).

    A person acts with their role's permissions; a service credential holds no role, only
    its ``scopes`` (a subset of :data:`~cartguard.staff.roles.SERVICE_SCOPES`).
    """

    username: str
    role: Role | None
    scopes: frozenset[Permission] | None = None  # set only for service credentials

    @property
    def is_service(self) -> bool:
        return self.scopes is not None

    @property
    def actor(self) -> str:
        return f"service:{self.username}" if self.is_service else f"staff:{self.username}"

    def may(self, permission: Permission) -> bool:
        if self.is_service:
            return permission in self.scopes and permission in SERVICE_SCOPES
        return self.role is not None and is_allowed(self.role, permission)


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


def seal_totp_secret(username: str, secret: str) -> str:
    """Seal under the newest vault key, bound to the account (see ``vault.SEALED_COLUMNS``:
    a vault key rotation re-seals these in the same transaction as the vault entries)."""
    return get_vault().seal_field(secret, staff_totp_aad(username))


def open_totp_secret(username: str, blob: str) -> str:
    try:
        return get_vault().open_field(blob, staff_totp_aad(username))
    except VaultError as exc:
        raise StaffError(
            f"the authenticator secret of {username!r} cannot be opened ({exc}); an "
            "Administrator can issue a new one (`cartguard staff reset-2fa`), or see "
            "docs/runbook.md, 'Break-glass' if no Administrator can sign in"
        ) from exc


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
    else:
        end_sessions_of(session, account.username)
    action = "staff.disable" if disabled else "staff.enable"
    audit.record(session, by.actor, action, f"staff:{account.username}")


def reset_totp(session: Session, by: StaffIdentity, username: str) -> NewStaff:
    """A new authenticator secret for someone (lost phone, or a key problem); shown once.

    Every open session of that account ends: whoever held the old phone is out.
    """
    account = _managed_account(session, by, username)
    return _new_totp(session, account, actor=by.actor, action="staff.reset_2fa")


def _new_totp(
    session: Session, account: StaffAccount, *, actor: str, action: str, **details: object
) -> NewStaff:
    secret = pyotp.random_base32()
    account.totp_secret_enc = seal_totp_secret(account.username, secret)
    account.last_otp_step = None
    account.failed_attempts = 0
    account.locked_until = None
    ended = end_sessions_of(session, account.username)
    session.flush()
    audit.record(
        session, actor, action, f"staff:{account.username}", {"sessions_ended": ended, **details}
    )
    return NewStaff(username=account.username, role=Role(account.role), totp_secret=secret)


def end_sessions_of(session: Session, username: str) -> int:
    """Revoke every open staff session of ``username`` (disabled, new authenticator...)."""
    result = session.execute(
        update(StaffSession)
        .where(
            StaffSession.kind == "session",
            StaffSession.name == username,
            StaffSession.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def _usable(account: StaffAccount) -> bool:
    try:
        open_totp_secret(account.username, account.totp_secret_enc)
    except StaffError:
        return False
    return True


def break_glass(session: Session, username: str, new_password: str, reason: str) -> NewStaff:
    """Recover the last Administrator who cannot sign in: new password and authenticator.

    For the operator of the host (see docs/runbook.md, "Break-glass"): it needs the key file
    or the environment the services run with, not a staff sign-in, so it is kept narrow:
    only an Administrator account, only when no *other* enabled Administrator could sign in
    and do it properly (``staff reset-2fa``), a stated reason, and an audit entry.
    """
    reason = " ".join((reason or "").split())
    if len(reason) < 10:
        raise StaffError("say why (at least 10 characters): it goes into the audit log")
    account = find_account(session, username)
    if account is None or account.role != Role.ADMINISTRATOR.value:
        raise StaffError(f"there is no Administrator account named {username!r}")
    others = session.execute(
        select(StaffAccount).where(
            StaffAccount.role == Role.ADMINISTRATOR.value,
            StaffAccount.disabled.is_(False),
            StaffAccount.id != account.id,
        )
    ).scalars()
    usable = sorted(other.username for other in others if _usable(other))
    if usable:
        raise StaffError(
            f"refused: {', '.join(usable)} can still sign in as Administrator; ask them to "
            f"run `cartguard staff reset-2fa {account.username}` (and `staff enable`)"
        )
    check_password_policy(new_password, account.username)
    account.password_hash = hash_password(new_password)
    account.disabled = False
    return _new_totp(
        session,
        account,
        actor="break-glass:host-operator",
        action="staff.break_glass",
        reason=reason[:200],
    )


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
    if who.may(permission):
        return
    audit.record(session, who.actor, "staff.refused", details={"permission": permission.value})
    if who.is_service:
        raise PermissionDenied(
            f"refused: the service credential {who.username!r} is not scoped to "
            f"{DESCRIPTIONS[permission]} ({permission.value})"
        )
    raise PermissionDenied(
        f"refused: the {who.role.value} role may not {DESCRIPTIONS[permission]}; "
        "ask an Administrator if you need this"
    )
