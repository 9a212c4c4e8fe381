"""Staff sessions (a sign-in that lasts 15 minutes) and scoped service credentials (cron).

Each TOTP code signs in once, so a person running several commands signs in once with
``cartguard staff login`` and the commands that follow present the session's token. A
scheduled job cannot type a code at all: it presents a *service credential*, issued by an
Administrator, scoped to the few scheduled permissions (``roles.SERVICE_SCOPES``) and acting
under its own name (``service:<name>`` in the audit log).

Guarantees:

* tokens are 256 random bits; only their SHA-256 is stored, so a copy of the database signs
  nobody in;
* a session lasts :data:`SESSION_MINUTES` from sign-in (not from last use) and ends early on
  logout, when the account is disabled or gets a new authenticator;
* a session acts with the account's role *as it is now* (a role change or a disable takes
  effect on the next command), a service credential only within its scopes;
* opening, ending and issuing are audited; a refused token is too.

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartguard import audit
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.staff import StaffSession
from cartguard.staff.accounts import StaffError, StaffIdentity, find_account, require
from cartguard.staff.roles import SERVICE_SCOPES, Permission, Role

SESSION_MINUTES = 15
SERVICE_DAYS_DEFAULT = 90
SERVICE_DAYS_MAX = 366
_SERVICE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
_TOKEN_RE = re.compile(r"^cgs_[A-Za-z0-9_-]{43}$")


class SessionRefused(StaffError):
    """The presented token signs nobody in; the message says what to do."""


def _new_token() -> str:
    return "cgs_" + secrets.token_urlsafe(32)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    session: Session, who: StaffIdentity, *, now: datetime | None = None
) -> tuple[str, datetime]:
    """A 15-minute session for ``who`` (just signed in); returns (token, expiry)."""
    if who.is_service:
        raise StaffError("a service credential cannot open a staff session")
    now = now or utcnow()
    token = _new_token()
    expires = now + timedelta(minutes=SESSION_MINUTES)
    session.add(
        StaffSession(
            token_hash=_hash(token),
            kind="session",
            name=who.username,
            scopes="",
            created_by=who.actor,
            created_at=now,
            expires_at=expires,
        )
    )
    session.flush()
    audit.record(session, who.actor, "staff.login", who.actor, {"minutes": SESSION_MINUTES})
    return token, expires


def resolve(session: Session, token: str, *, now: datetime | None = None) -> StaffIdentity:
    """Who ``token`` signs in; raises :class:`SessionRefused` (audited) when nobody."""
    now = now or utcnow()
    row = None
    if isinstance(token, str) and _TOKEN_RE.match(token.strip()):
        row = session.execute(
            select(StaffSession).where(StaffSession.token_hash == _hash(token.strip()))
        ).scalar_one_or_none()
    if row is None:
        audit.record(session, "staff:?", "staff.token_refused", details={"reason": "unknown"})
        raise SessionRefused("this staff token is not valid: sign in with `cartguard staff login`")
    actor = f"service:{row.name}" if row.kind == "service" else f"staff:{row.name}"
    if row.revoked_at is not None or row.expires_at <= now:
        reason = "revoked" if row.revoked_at is not None else "expired"
        audit.record(session, actor, "staff.token_refused", details={"reason": reason})
        what = "service credential" if row.kind == "service" else "staff session"
        raise SessionRefused(
            f"your {what} has {'been revoked' if reason == 'revoked' else 'expired'}: "
            + (
                "sign in again with `cartguard staff login`"
                if row.kind == "session"
                else "ask an Administrator for a new one"
            )
        )
    if row.kind == "service":
        scopes = frozenset(Permission(p) for p in row.scopes.split(",") if p)
        row.last_used_at = now
        return StaffIdentity(username=row.name, role=None, scopes=scopes & SERVICE_SCOPES)
    account = find_account(session, row.name)
    if (
        account is None
        or account.disabled
        or (account.locked_until is not None and account.locked_until > now)
    ):
        row.revoked_at = now
        audit.record(session, actor, "staff.token_refused", details={"reason": "account"})
        raise SessionRefused("this staff account cannot sign in any more")
    try:
        role = Role(account.role)
    except ValueError as exc:
        raise SessionRefused(f"the account has an unknown role {account.role!r}") from exc
    row.last_used_at = now
    return StaffIdentity(username=account.username, role=role)


def end_session(session: Session, token: str) -> bool:
    """Log out: the token stops working at once. False when it was not an open session."""
    row = session.execute(
        select(StaffSession).where(StaffSession.token_hash == _hash(token.strip()))
    ).scalar_one_or_none()
    if row is None or row.kind != "session" or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    audit.record(session, f"staff:{row.name}", "staff.logout", f"staff:{row.name}")
    return True


# --- service credentials ------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceCredential:
    name: str
    scopes: tuple[str, ...]
    created_by: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None


def parse_scopes(values: list[str]) -> frozenset[Permission]:
    """Scopes as typed (``audit.verify``, comma or repeated); only service scopes pass."""
    wanted = {v.strip() for value in values for v in value.split(",") if v.strip()}
    if not wanted:
        raise StaffError("give at least one --scope")
    allowed = ", ".join(sorted(p.value for p in SERVICE_SCOPES))
    scopes = set()
    for value in wanted:
        try:
            permission = Permission(value)
        except ValueError as exc:
            raise StaffError(
                f"unknown scope {value!r}; a service credential may hold: {allowed}"
            ) from exc
        if permission not in SERVICE_SCOPES:
            raise StaffError(
                f"{value} cannot be given to a service credential; it may hold: {allowed}"
            )
        scopes.add(permission)
    return frozenset(scopes)


def issue_service_credential(
    session: Session,
    by: StaffIdentity,
    name: str,
    scopes: frozenset[Permission],
    *,
    days: int = SERVICE_DAYS_DEFAULT,
) -> tuple[str, datetime]:
    """A scoped credential for a scheduled job; returns (token, expiry). Administrators only."""
    require(session, by, Permission.STAFF_MANAGE)
    name = name.strip().lower()
    if not _SERVICE_NAME_RE.match(name):
        raise StaffError("a service name is 3-64 characters: a-z, 0-9, '.', '_' or '-'")
    if not 1 <= days <= SERVICE_DAYS_MAX:
        raise StaffError(f"a service credential lasts 1 to {SERVICE_DAYS_MAX} days")
    if not scopes or not scopes <= SERVICE_SCOPES:
        raise StaffError("a service credential holds only the scheduled-job scopes")
    now = utcnow()
    if _active_service(session, name, now) is not None:
        raise StaffError(
            f"a service credential named {name!r} is active: revoke it first "
            f"(`cartguard staff service-token revoke {name}`)"
        )
    token = _new_token()
    expires = now + timedelta(days=days)
    session.add(
        StaffSession(
            token_hash=_hash(token),
            kind="service",
            name=name,
            scopes=",".join(sorted(p.value for p in scopes)),
            created_by=by.actor,
            created_at=now,
            expires_at=expires,
        )
    )
    session.flush()
    audit.record(
        session,
        by.actor,
        "staff.service_token.create",
        f"service:{name}",
        {"scopes": sorted(p.value for p in scopes), "days": days},
    )
    return token, expires


def _active_service(session: Session, name: str, now: datetime) -> StaffSession | None:
    return session.execute(
        select(StaffSession).where(
            StaffSession.kind == "service",
            StaffSession.name == name,
            StaffSession.revoked_at.is_(None),
            StaffSession.expires_at > now,
        )
    ).scalar_one_or_none()


def revoke_service_credential(session: Session, by: StaffIdentity, name: str) -> bool:
    require(session, by, Permission.STAFF_MANAGE)
    now = utcnow()
    row = _active_service(session, name.strip().lower(), now)
    if row is None:
        return False
    row.revoked_at = now
    audit.record(session, by.actor, "staff.service_token.revoke", f"service:{row.name}")
    return True


def list_service_credentials(session: Session, by: StaffIdentity) -> list[ServiceCredential]:
    require(session, by, Permission.STAFF_MANAGE)
    now = utcnow()
    rows = session.execute(
        select(StaffSession)
        .where(
            StaffSession.kind == "service",
            StaffSession.revoked_at.is_(None),
            StaffSession.expires_at > now,
        )
        .order_by(StaffSession.name)
    ).scalars()
    return [
        ServiceCredential(
            r.name,
            tuple(p for p in r.scopes.split(",") if p),
            r.created_by,
            r.created_at,
            r.expires_at,
            r.last_used_at,
        )
        for r in rows
    ]
