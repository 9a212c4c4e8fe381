"""Suspicious channel events, counted per minute in the database for the anomaly rules.

The channels run inside the Rasa process, the rules in the web service (or cron), so the
counts must cross processes. :func:`note` only bumps an in-memory counter; a daemon thread
writes the aggregated counts every few seconds (:func:`flush`). A flood of forged requests
therefore costs one small ``UPDATE`` per minute and subject, not one write per request, and
if the buffer is full new subjects are dropped (and logged) rather than eating memory.

Subjects are keyed pseudonyms (:func:`pseudonym`): HMAC-SHA256 under the installation's
``audit_key``, first 16 hex digits, exactly what step-up records as ``ip_hash`` in the audit
log, so a credential-stuffing event, a forged-token burst and a block all name the same
address the same way without any table holding the address itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cartguard.keys import load_keys
from cartguard.shop.db import session_scope
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.security import SecuritySignal

log = logging.getLogger(__name__)

INVALID_TOKEN = "auth.invalid_token"  # noqa: S105 - a signal name
FORGED_SESSION = "auth.forged_session"
BAD_SIGNATURE = "messenger.bad_signature"
CARD_TYPED = "pii.card_typed"
KINDS = frozenset({INVALID_TOKEN, FORGED_SESSION, BAD_SIGNATURE, CARD_TYPED})

FLUSH_SECONDS = 5.0
MAX_PENDING_KEYS = 5000
_KEY_CACHE_SECONDS = 60.0

_key_lock = threading.Lock()
_key_cache: tuple[float, bytes] | None = None


def _audit_key() -> bytes:
    global _key_cache
    with _key_lock:
        now = time.monotonic()
        if _key_cache is None or now - _key_cache[0] > _KEY_CACHE_SECONDS:
            _key_cache = (now, load_keys().raw("audit_key"))
        return _key_cache[1]


def forget_cached_key() -> None:
    """Tests and key changes: read ``audit_key`` again on the next call."""
    global _key_cache
    with _key_lock:
        _key_cache = None


def pseudonym(value: str) -> str:
    """A keyed, stable stand-in for an address or sender id (16 hex digits)."""
    return hmac.new(_audit_key(), value.encode(), hashlib.sha256).hexdigest()[:16]


def subject_for(*, ip: str | None = None, conversation: str | None = None) -> str:
    """``ip:<pseudonym>``, ``conversation:<pseudonym>`` or ``-`` when nothing is known."""
    if ip:
        return f"ip:{pseudonym(ip)}"
    if conversation:
        return f"conversation:{pseudonym(conversation)}"
    return "-"


def _bucket(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


class SignalBuffer:
    """Counts in memory, written to ``security_signals`` by :meth:`flush`."""

    def __init__(self, flush_seconds: float = FLUSH_SECONDS, max_keys: int = MAX_PENDING_KEYS):
        self.flush_seconds = flush_seconds
        self.max_keys = max_keys
        self._pending: Counter[tuple[str, str, datetime]] = Counter()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def note(self, kind: str, subject: str, *, at: datetime | None = None) -> None:
        key = (kind, subject[:80], _bucket(at or utcnow()))
        with self._lock:
            if key not in self._pending and len(self._pending) >= self.max_keys:
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    log.warning("security signals: buffer full, %d signals dropped", self.dropped)
                return
            self._pending[key] += 1
        self._ensure_flusher()

    def _ensure_flusher(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._flush_forever, name="cartguard-signals", daemon=True
            )
            self._thread.start()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.flush_seconds)
            try:
                self.flush()
            except Exception:  # keep counting; the next flush retries
                log.exception("security signals: flush failed; will retry")

    def flush(self, engine: Engine | None = None) -> int:
        """Write the pending counts; returns how many (kind, subject, minute) rows changed."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
        written = 0
        try:
            for (kind, subject, bucket), count in pending.items():
                _add(engine, kind, subject, bucket, count)
                written += 1
        except Exception:
            with self._lock:  # put back what was not written, so nothing is lost
                done = list(pending)[:written]
                for key in done:
                    pending.pop(key, None)
                self._pending.update(pending)
            raise
        return written


def _add(engine: Engine | None, kind: str, subject: str, bucket: datetime, count: int) -> None:
    """Add ``count`` to one row, creating it; a concurrent creator makes us retry the update."""
    for _attempt in range(3):
        try:
            with session_scope(engine) as session:
                changed = session.execute(
                    update(SecuritySignal)
                    .where(
                        SecuritySignal.kind == kind,
                        SecuritySignal.subject == subject,
                        SecuritySignal.bucket == bucket,
                    )
                    .values(count=SecuritySignal.count + count)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if not changed:
                    session.add(
                        SecuritySignal(kind=kind, subject=subject, bucket=bucket, count=count)
                    )
            return
        except IntegrityError:
            continue  # another process created the row between our UPDATE and INSERT
    raise RuntimeError("could not record a security signal after three attempts")


_buffer = SignalBuffer()


def buffer() -> SignalBuffer:
    """The process-wide buffer."""
    return _buffer


def note(
    kind: str, *, ip: str | None = None, conversation: str | None = None, count: int = 1
) -> None:
    """Count one suspicious event (never raises: monitoring must not break a channel)."""
    try:
        subject = subject_for(ip=ip, conversation=conversation)
        for _ in range(max(1, count)):
            _buffer.note(kind, subject)
    except Exception:
        log.exception("security signals: could not count a %s signal", kind)


def flush(engine: Engine | None = None) -> int:
    """Write this process's pending counts now (the scanner does this before each scan)."""
    return _buffer.flush(engine)


def counts(session: Session, kind: str, since: datetime) -> dict[str, int]:
    """Subject -> total count of ``kind`` in minute buckets starting at or after ``since``."""
    rows = session.execute(
        select(SecuritySignal.subject, func.sum(SecuritySignal.count))
        .where(SecuritySignal.kind == kind, SecuritySignal.bucket >= _bucket(since))
        .group_by(SecuritySignal.subject)
    ).all()
    return {subject: int(total or 0) for subject, total in rows}


def purge(session: Session, older_than: timedelta = timedelta(days=7)) -> int:
    """Delete old counts; the rules look back at most a day."""
    from sqlalchemy import delete

    result = session.execute(
        delete(SecuritySignal).where(SecuritySignal.bucket < utcnow() - older_than)
    )
    return int(result.rowcount or 0)
