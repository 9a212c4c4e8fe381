"""Append-only, hash-chained audit log of security-relevant actions.

Each entry's hash is an HMAC (keyed with the installation's ``audit_key``) over the previous
entry's hash and the entry's own fields, so editing, deleting or reordering any entry breaks
:func:`verify` from that point on, and someone with only database access cannot forge a
consistent chain. Callers pass identifiers and outcomes only: never codes, card numbers or
other personal data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartguard.keys import load_keys
from cartguard.shop.models import AuditEntry
from cartguard.shop.models._common import utcnow

GENESIS = "0" * 64


def _digest(
    key: bytes,
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    subject: str | None,
    details: str,
) -> str:
    payload = json.dumps(
        [prev_hash, at.isoformat(timespec="microseconds"), actor, action, subject, details],
        separators=(",", ":"),
    )
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def record(
    session: Session,
    actor: str,
    action: str,
    subject: str | None = None,
    details: dict[str, Any] | None = None,
    key: bytes | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (committed with the action it records)."""
    key = key or load_keys().raw("audit_key")
    last = session.execute(
        select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1).with_for_update()
    ).scalar_one_or_none()
    prev_hash = last.entry_hash if last else GENESIS
    at = utcnow()
    details_json = json.dumps(details or {}, sort_keys=True, separators=(",", ":"))
    entry = AuditEntry(
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        details=details_json,
        prev_hash=prev_hash,
        entry_hash=_digest(key, prev_hash, at, actor, action, subject, details_json),
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str = ""


def verify(session: Session, key: bytes | None = None) -> VerifyResult:
    """Walk the chain from the start; report the first entry that was edited, removed or moved."""
    key = key or load_keys().raw("audit_key")
    prev_hash = GENESIS
    checked = 0
    expected_id: int | None = None
    for entry in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars():
        if expected_id is not None and entry.id != expected_id:
            return VerifyResult(
                False, checked, entry.id, f"entries before id {entry.id} are missing"
            )
        if entry.prev_hash != prev_hash:
            return VerifyResult(
                False, checked, entry.id, "chain broken: an earlier entry was removed or changed"
            )
        digest = _digest(
            key, prev_hash, entry.at, entry.actor, entry.action, entry.subject, entry.details
        )
        if not hmac.compare_digest(digest, entry.entry_hash):
            return VerifyResult(False, checked, entry.id, "entry content does not match its hash")
        prev_hash = entry.entry_hash
        expected_id = entry.id + 1
        checked += 1
    return VerifyResult(True, checked)
