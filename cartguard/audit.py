"""Append-only, hash-chained audit log of security-relevant actions.

Guarantees:

* **Tamper evidence.** Each entry's hash is an HMAC (keyed with the installation's
  ``audit_key``) over its sequence number, the previous entry's hash and its own fields, so
  editing, deleting or reordering any entry breaks :func:`verify` from that point on, and
  someone with only database access cannot forge a consistent chain.
* **Serialized appends, no gaps.** An append locks the single ``audit_head`` row (on SQLite
  the transaction takes the write lock first, see :mod:`cartguard.shop.locking`), takes the
  next ``seq`` from it and advances it with a conditional ``UPDATE``. Concurrent writers
  therefore form one chain, never two entries with the same predecessor, and a rolled-back
  transaction rolls its ``seq`` back too: numbers are 1, 2, 3... and a missing one means a
  removed entry.
* **Truncation is detected.** Deleting the newest entries (or all of them) leaves a chain
  that is intact on its own, so the head is also kept *outside* the database: after each
  commit that appended, the new head (``seq`` and hash) is written to an owner-only anchor
  file under the data directory (:func:`anchor_path`), and ``cartguard audit verify`` prints
  it for the operator to keep. :func:`verify` fails when the database's head row, the anchor
  file or a head the operator supplies is not in the chain.

Callers pass identifiers and outcomes only: never codes, card numbers or other personal data.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import weakref
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cartguard.keys import load_keys
from cartguard.settings import get_settings
from cartguard.shop.locking import begin_write
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.audit import GENESIS, HEAD_ROW_ID, AuditEntry, AuditHead

log = logging.getLogger(__name__)

ANCHOR_FILE = "audit-anchor.json"
_PENDING = "cartguard.audit.pending_head"


class AuditError(RuntimeError):
    """The audit log cannot take an entry; the action it would record must not happen."""


@dataclass(frozen=True)
class Head:
    """The newest entry of a chain: its sequence number and hash (``0``/genesis when empty)."""

    seq: int
    entry_hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.entry_hash}"

    @classmethod
    def parse(cls, text_value: str) -> Head:
        """Read ``SEQ:HASH`` as printed by ``cartguard audit verify``."""
        seq, _, digest = text_value.strip().partition(":")
        if (
            not seq.isdigit()
            or len(digest) != 64
            or not all(c in "0123456789abcdef" for c in digest)
        ):
            raise ValueError(
                "a head is written SEQ:HASH, e.g. 42:3fa2... (64 hex digits), "
                "as `cartguard audit verify` prints it"
            )
        return cls(int(seq), digest)


def _digest(
    key: bytes,
    seq: int | None,
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    subject: str | None,
    details: str,
) -> str:
    """The entry's HMAC; ``seq=None`` is the format before sequence numbers (legacy)."""
    fields = [prev_hash, at.isoformat(timespec="microseconds"), actor, action, subject, details]
    payload = json.dumps(fields if seq is None else [seq, *fields], separators=(",", ":"))
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
    begin_write(session)
    head = session.execute(
        select(AuditHead).where(AuditHead.id == HEAD_ROW_ID).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        raise AuditError(
            "the audit log's head row is missing (the schema was not created with "
            "`cartguard init-db`, or the row was deleted): nothing can be recorded; "
            "run `cartguard audit verify` and see docs/runbook.md"
        )
    prev_seq, prev_hash = int(head.seq), head.entry_hash
    seq = prev_seq + 1
    at = utcnow()
    details_json = json.dumps(details or {}, sort_keys=True, separators=(",", ":"))
    entry_hash = _digest(key, seq, prev_hash, at, actor, action, subject, details_json)
    advanced = session.execute(
        update(AuditHead)
        .where(AuditHead.id == HEAD_ROW_ID, AuditHead.seq == prev_seq)
        .values(seq=seq, entry_hash=entry_hash)
        .execution_options(synchronize_session=False)
    )
    if advanced.rowcount != 1:  # cannot happen while the row lock holds; refuse rather than fork
        raise AuditError("another writer moved the audit head during this append; retry")
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        details=details_json,
        prev_hash=prev_hash,
        entry_hash=entry_hash,
    )
    session.add(entry)
    session.flush()
    pending = session.info.get(_PENDING)
    first_prev = pending[1] if pending else Head(prev_seq, prev_hash)
    session.info[_PENDING] = (database_identity(session), first_prev, Head(seq, entry_hash))
    return entry


# --------------------------------------------------------------------------- the anchor


def anchor_path() -> Path:
    return get_settings().data_dir / ANCHOR_FILE


_identities: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def database_identity(session: Session) -> str:
    """Which database (and PostgreSQL schema) a chain lives in: the anchor file's key."""
    bind = session.get_bind()
    engine = bind.engine if hasattr(bind, "engine") else bind
    known = _identities.get(engine)
    if known is not None:
        return known
    url = engine.url
    if url.get_backend_name() == "sqlite":
        identity = f"sqlite:{Path(url.database or ':memory:').resolve()}"
    else:
        schema = session.execute(text("SELECT current_schema()")).scalar_one()
        identity = f"{url.get_backend_name()}://{url.host}:{url.port or ''}/{url.database}#{schema}"
    _identities[engine] = identity
    return identity


def _read_anchors(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise AuditError(f"the audit anchor file {path} is not valid JSON") from exc
    return data if isinstance(data, dict) else {}


def _write_private(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


class _AnchorLock:
    """An exclusive lock on the anchor file, across threads and processes (``flock``)."""

    def __init__(self, path: Path) -> None:
        self._path = path.with_name(path.name + ".lock")

    def __enter__(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def anchored_head(identity: str, path: Path | None = None) -> Head | None:
    """The head last anchored for the database ``identity`` (None: never anchored here)."""
    entry = _read_anchors(path or anchor_path()).get(identity)
    if not entry:
        return None
    return Head(int(entry["seq"]), str(entry["hash"]))


def _advance_anchor(identity: str, extended: Head, new: Head) -> None:
    """Move the anchor to ``new`` if the committed appends continued the anchored chain.

    ``extended`` is the head the transaction appended to. A writer whose head is at or behind
    the anchor (it lost a race to a newer one) leaves it alone. A chain that does not pass
    through the anchored entry (the log was truncated and refilled) *freezes* the anchor:
    it never moves again until an Administrator re-anchors (``cartguard audit anchor
    --reset``), so ``verify`` keeps reporting the truncation however many entries follow.
    """
    path = anchor_path()
    with _AnchorLock(path):
        anchors = _read_anchors(path)
        current = anchors.get(identity)
        if current is not None:
            anchored = Head(int(current["seq"]), str(current["hash"]))
            if current.get("fork"):
                return
            if new.seq <= anchored.seq:
                return
            if extended.seq == anchored.seq and extended.entry_hash != anchored.entry_hash:
                log.error(
                    "audit log fork: entry %s is not the one anchored; the log was truncated "
                    "or replaced. Run `cartguard audit verify`.",
                    anchored.seq,
                )
                anchors[identity] = {**current, "fork": utcnow().isoformat()}
                _write_private(path, anchors)
                return
        anchors[identity] = {"seq": new.seq, "hash": new.entry_hash, "at": utcnow().isoformat()}
        _write_private(path, anchors)


@event.listens_for(Session, "after_commit")
def _anchor_after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending is None:
        return
    identity, extended, new = pending
    try:
        _advance_anchor(identity, extended, new)
    except (OSError, AuditError):  # committed already: say so loudly, verify will notice
        log.exception("could not write the audit anchor file %s", anchor_path())


@event.listens_for(Session, "after_soft_rollback")
def _forget_after_rollback(session: Session, _previous: object) -> None:
    # Any rollback, a savepoint's included: this transaction then leaves the anchor where it
    # was (a lagging anchor is still a true lower bound; the next append moves it on).
    session.info.pop(_PENDING, None)


def set_anchor(identity: str, head: Head) -> None:
    """Anchor ``head`` for ``identity`` whatever was anchored before (``audit anchor --reset``:
    after a restore from backup, once an Administrator has established why it moved back)."""
    path = anchor_path()
    with _AnchorLock(path):
        anchors = _read_anchors(path)
        anchors[identity] = {"seq": head.seq, "hash": head.entry_hash, "at": utcnow().isoformat()}
        _write_private(path, anchors)


# --------------------------------------------------------------------------- verification


def _legacy_until(session: Session) -> int:
    value = session.execute(
        select(AuditHead.legacy_until).where(AuditHead.id == HEAD_ROW_ID)
    ).scalar_one_or_none()
    return int(value or 0)


def database_head(session: Session) -> Head:
    row = session.execute(select(AuditHead).where(AuditHead.id == HEAD_ROW_ID)).scalar_one_or_none()
    if row is None:
        return Head(-1, "")
    return Head(int(row.seq), row.entry_hash)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""
    head: Head | None = None  # the newest intact entry (what an operator keeps)


def verify(
    session: Session,
    key: bytes | None = None,
    *,
    expected: Head | None = None,
    use_anchor: bool = True,
) -> VerifyResult:
    """Walk the chain from the start and check it against every head known outside it.

    Fails at the first entry that was edited, removed or moved; when the database's head row
    is not the chain's last entry; and when the anchor file's head or ``expected`` (a head
    the operator kept) is not in the chain: that is how deleting the newest entries, or all
    of them, shows.
    """
    key = key or load_keys().raw("audit_key")
    heads: list[tuple[str, Head | None]] = [("the database's head row", database_head(session))]
    if use_anchor:
        anchored = anchored_head(database_identity(session))
        heads.append((f"the anchor file {anchor_path()}", anchored))
    if expected is not None:
        heads.append(("the head you supplied", expected))
    wanted = {head.seq for _, head in heads if head is not None}
    legacy_until = _legacy_until(session)
    seen: dict[int, str] = {0: GENESIS}

    prev = Head(0, GENESIS)
    checked = 0
    for entry in session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars():
        seq = int(entry.seq)
        if seq != prev.seq + 1:
            return VerifyResult(
                False, checked, seq, f"entries {prev.seq + 1} to {seq - 1} are missing", prev
            )
        if entry.prev_hash != prev.entry_hash:
            return VerifyResult(
                False, checked, seq, "chain broken: an earlier entry was removed or changed", prev
            )
        digest = _digest(
            key,
            None if seq <= legacy_until else seq,
            prev.entry_hash,
            entry.at,
            entry.actor,
            entry.action,
            entry.subject,
            entry.details,
        )
        if not hmac.compare_digest(digest, entry.entry_hash):
            return VerifyResult(False, checked, seq, "entry content does not match its hash", prev)
        if seq in wanted:
            seen[seq] = entry.entry_hash
        prev = Head(seq, entry.entry_hash)
        checked += 1

    for index, (where, head) in enumerate(heads):
        problem = _head_problem(head, seen, prev, exact=index == 0)
        if problem:
            first_bad = prev.seq + 1 if head is not None and head.seq > prev.seq else None
            return VerifyResult(False, checked, first_bad, f"{where} {problem}", prev)
    return VerifyResult(True, checked, head=prev)


def _head_problem(
    head: Head | None, seen: dict[int, str], last: Head, *, exact: bool
) -> str | None:
    """What is wrong with ``head`` given the chain (None: it is the last entry or in the chain)."""
    if head is None:
        return None  # never anchored on this machine: nothing to compare
    if head.seq < 0:
        return "is missing (deleted?)"
    if head.seq > last.seq:
        return (
            f"says the log reaches entry {head.seq}, but it ends at entry {last.seq}: "
            "the newest entries were deleted"
        )
    if seen.get(head.seq) != head.entry_hash:
        return f"names an entry {head.seq} that is not in this log: the log was replaced"
    if exact and head.seq != last.seq:
        return f"is at entry {head.seq} but the log goes on to {last.seq}: it was tampered with"
    return None


def count(session: Session) -> int:
    return int(session.execute(select(func.count(AuditEntry.id))).scalar_one())
