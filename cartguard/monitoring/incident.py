"""Containment during an incident: revoke sessions, rotate keys, block sources, maintenance.

Every function here records who did what in the audit log, in the same transaction as the
change, so the log says exactly what was contained and when (what the 72-hour notification
to the supervisory authority has to describe). The CLI (``cartguard security ...``) is a thin
shell over these functions.

Revocation is done twice over, so it holds even in processes that cached the old keys:

* ``login_key`` and ``session_key`` are replaced in the key file: every login token and
  webchat session id signed before is refused by signature;
* the server-side records behind them are ended: webchat sessions are deleted (an old
  ticket then names no session, so the channel starts a fresh one), web-shop logins are
  marked revoked, and every stepped-up conversation must verify again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from cartguard import audit
from cartguard.keys import write_key_file
from cartguard.monitoring.signals import pseudonym
from cartguard.settings import get_settings
from cartguard.shop.db import session_scope
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.channels import WebchatSession
from cartguard.shop.models.security import BlockedSource
from cartguard.shop.models.stepup import StepUpSession
from cartguard.shop.models.web import WebSession

REVOKED_KEYS = ("login_key", "session_key")
BLOCK_KINDS = ("ip", "sender")
_PSEUDONYM_CHARS = frozenset("0123456789abcdef")


class IncidentError(RuntimeError):
    """A containment step cannot be done as asked; the message says what to do instead."""


# --------------------------------------------------------------------------- revocation


@dataclass(frozen=True)
class Revocation:
    keys_rotated: tuple[str, ...]
    keys_in_environment: tuple[str, ...]
    webchat_sessions_ended: int
    web_logins_revoked: int
    stepups_ended: int

    @property
    def complete(self) -> bool:
        return not self.keys_in_environment


def _rotate_key_file(names: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Replace ``names`` in the key file; returns (rotated, set in the environment instead)."""
    from_env = tuple(n for n in names if os.environ.get(f"CARTGUARD_{n.upper()}"))
    to_rotate = tuple(n for n in names if n not in from_env)
    if not to_rotate:
        return (), from_env
    path = get_settings().keys_file
    if not path.exists():
        raise IncidentError(f"key file {path} not found: the keys come from elsewhere")
    data = json.loads(path.read_text())
    for name in to_rotate:
        data[name] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    write_key_file(path, data)
    return to_rotate, from_env


def revoke_sessions(session: Session, *, actor: str) -> Revocation:
    """Log every shopper out everywhere: new keys and no server-side session survives."""
    now = utcnow()
    webchat = session.execute(delete(WebchatSession)).rowcount or 0
    logins = (
        session.execute(
            update(WebSession)
            .where(WebSession.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        or 0
    )
    stepups = session.execute(delete(StepUpSession)).rowcount or 0
    rotated, from_env = _rotate_key_file(REVOKED_KEYS)
    result = Revocation(rotated, from_env, int(webchat), int(logins), int(stepups))
    audit.record(
        session,
        actor,
        "security.revoke_sessions",
        details={
            "keys_rotated": list(rotated),
            "keys_in_environment": list(from_env),
            "webchat_sessions_ended": result.webchat_sessions_ended,
            "web_logins_revoked": result.web_logins_revoked,
            "stepups_ended": result.stepups_ended,
        },
    )
    return result


# --------------------------------------------------------------------------- vault


def rotate_vault(*, actor: str) -> str:
    """New vault key, everything sealed re-sealed under it, old keys removed; returns its id.

    The audit entry is written inside the re-sealing transaction (both commit or neither).
    """
    from cartguard.vault import VaultError, get_vault

    def audited(session: Session, report) -> None:  # noqa: ANN001 - vault.RotationReport
        audit.record(
            session,
            actor,
            "vault.rotate",
            subject=report.active_key,
            details={
                "new_key": True,
                "resealed": report.resealed,
                "resealed_fields": report.resealed_fields,
                "unreadable": len(report.unreadable),
            },
        )

    try:
        return get_vault().add_key_and_rotate(on_rotated=audited)
    except VaultError as exc:
        raise IncidentError(f"vault rotation failed: {exc}") from exc


# --------------------------------------------------------------------------- blocklist


def _pseudonym_of(kind: str, value: str | None, given: str | None) -> str:
    if kind not in BLOCK_KINDS:
        raise IncidentError(f"can only block one of {', '.join(BLOCK_KINDS)}, not {kind!r}")
    if given:
        given = given.strip().lower().removeprefix("ip:").removeprefix("sender:")
        if len(given) != 16 or not set(given) <= _PSEUDONYM_CHARS:
            raise IncidentError(
                "a pseudonym is the 16 hex digits shown in a security event (e.g. ip:3fa2...)"
            )
        return given
    if not value or not value.strip():
        raise IncidentError(f"say which {kind} to block, or give its pseudonym")
    return pseudonym(value.strip())


def block(
    session: Session,
    kind: str,
    value: str | None = None,
    *,
    actor: str,
    pseudonym_value: str | None = None,
    reason: str = "",
    hours: float | None = None,
) -> BlockedSource:
    """Refuse an address (``ip``) or a Messenger sender (``sender``) in every channel."""
    digest = _pseudonym_of(kind, value, pseudonym_value)
    expires = utcnow() + timedelta(hours=hours) if hours else None
    row = session.execute(
        select(BlockedSource).where(BlockedSource.kind == kind, BlockedSource.pseudonym == digest)
    ).scalar_one_or_none()
    if row is None:
        row = BlockedSource(kind=kind, pseudonym=digest, created_by=actor, created_at=utcnow())
        session.add(row)
    row.reason, row.expires_at, row.created_by = reason[:200], expires, actor
    session.flush()
    audit.record(
        session,
        actor,
        "security.block",
        f"{kind}:{digest}",
        {"hours": hours, "reason": reason[:200]},
    )
    _shared.invalidate()
    return row


def unblock(
    session: Session,
    kind: str,
    value: str | None = None,
    *,
    actor: str,
    pseudonym_value: str | None = None,
) -> bool:
    """Lift a block; False when there was none."""
    digest = _pseudonym_of(kind, value, pseudonym_value)
    removed = session.execute(
        delete(BlockedSource).where(BlockedSource.kind == kind, BlockedSource.pseudonym == digest)
    ).rowcount
    audit.record(session, actor, "security.unblock", f"{kind}:{digest}", {"found": bool(removed)})
    _shared.invalidate()
    return bool(removed)


def active_blocks(session: Session, now: datetime | None = None) -> list[BlockedSource]:
    now = now or utcnow()
    return list(
        session.execute(
            select(BlockedSource)
            .where(or_(BlockedSource.expires_at.is_(None), BlockedSource.expires_at > now))
            .order_by(BlockedSource.id)
        ).scalars()
    )


@dataclass
class Blocklist:
    """A cached copy of the active blocks for the channels' hot path.

    Re-read at most every ``refresh_seconds`` (so a block takes effect in every replica within
    that time), in a worker thread so the event loop never waits on the database. If the
    database is down the last copy stays in force.
    """

    refresh_seconds: float = 5.0
    _entries: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    _loaded_at: float = float("-inf")
    _generation: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._loaded_at = float("-inf")

    def _reload(self) -> None:
        generation = self._generation
        with session_scope() as session:
            rows = active_blocks(session)
            entries = frozenset((r.kind, r.pseudonym) for r in rows)
        with self._lock:
            self._entries = entries
            # A block made while we were reading must not wait for the next refresh.
            if generation == self._generation:
                self._loaded_at = time.monotonic()

    def _stale(self) -> bool:
        return time.monotonic() - self._loaded_at >= self.refresh_seconds

    def _contains(self, kind: str, value: str | None) -> bool:
        return bool(value) and (kind, pseudonym(str(value))) in self._entries

    def is_blocked(self, kind: str, value: str | None) -> bool:
        """Blocking check for synchronous callers (the web service middleware, the CLI)."""
        if not value:
            return False
        if self._stale():
            try:
                self._reload()
            except Exception:  # keep the last copy
                self._loaded_at = time.monotonic()
        return self._contains(kind, value)

    async def is_blocked_async(self, kind: str, value: str | None) -> bool:
        """The same check for the channels, with the reload off the event loop."""
        if not value:
            return False
        if self._stale():
            try:
                await asyncio.to_thread(self._reload)
            except Exception:  # keep the last copy
                self._loaded_at = time.monotonic()
        return self._contains(kind, value)


_shared = Blocklist()


def blocklist() -> Blocklist:
    """The process-wide blocklist the guard and the web service consult."""
    return _shared


# --------------------------------------------------------------------------- maintenance


def set_maintenance(session: Session, enabled: bool, *, actor: str) -> None:
    """Sensitive intents answer "not available right now"; everything else keeps working."""
    from cartguard.maintenance import set_enabled

    set_enabled(session, enabled, actor=actor)
