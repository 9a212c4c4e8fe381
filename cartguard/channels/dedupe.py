"""Answer each Messenger webhook event once, however often it is delivered.

Facebook re-delivers events it thinks failed, and anyone who captured a correctly signed body
can post it again: the signature covers the body, not the moment. Every event therefore has a
key (its message ``mid``, or a hash of sender, time and payload for events without one) that
is recorded atomically the first time; later deliveries are acknowledged and ignored.

Keys are kept for :data:`REPLAY_WINDOW_SECONDS`; the channel refuses events older than that
window, so a replay can never outlive its key. The store is the shop database by default
(a primary-key insert: atomic across replicas) or Redis (``SET NX EX``) when configured;
if Redis fails, the database takes over.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from datetime import timedelta
from typing import Protocol

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cartguard.settings import Settings, get_settings
from cartguard.shop.db import session_scope
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.channels import MessengerSeenEvent

logger = logging.getLogger(__name__)

REPLAY_WINDOW_SECONDS = 24 * 60 * 60
_PURGE_EVERY_SECONDS = 15 * 60


def event_key(*parts: object) -> str:
    """A fixed-length key for an event identity (no message text is stored)."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def purge_seen_events(session: Session) -> int:
    """Forget keys older than the replay window (such events are refused by age anyway)."""
    cutoff = utcnow() - timedelta(seconds=REPLAY_WINDOW_SECONDS)
    result = session.execute(delete(MessengerSeenEvent).where(MessengerSeenEvent.seen_at < cutoff))
    return result.rowcount or 0


class DedupeStore(Protocol):
    async def first_time(self, key: str) -> bool:
        """Record ``key``; True only for the first caller, ever (within the window)."""


class DatabaseDedupe:
    """Seen keys as rows of ``messenger_seen_events``."""

    def __init__(self) -> None:
        self._purged_at = 0.0

    def _insert(self, key: str) -> bool:
        try:
            with session_scope() as session:
                session.add(MessengerSeenEvent(event_key=key, seen_at=utcnow()))
        except IntegrityError:
            return False
        return True

    def _purge(self) -> None:
        with session_scope() as session:
            purge_seen_events(session)

    async def first_time(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._purged_at > _PURGE_EVERY_SECONDS:
            self._purged_at = now
            await asyncio.to_thread(self._purge)
        return await asyncio.to_thread(self._insert, key)


class RedisDedupe:
    """Seen keys in Redis with an expiry; falls back to the database if Redis fails."""

    def __init__(self, url: str, prefix: str = "cartguard:seen:") -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.prefix = prefix
        self._fallback = DatabaseDedupe()

    async def first_time(self, key: str) -> bool:
        try:
            created = await self._redis.set(
                self.prefix + key, b"1", nx=True, ex=REPLAY_WINDOW_SECONDS
            )
        except Exception as exc:
            logger.warning(
                "webhook dedupe: Redis failed (%s); using the database", type(exc).__name__
            )
            return await self._fallback.first_time(key)
        return bool(created)


def build_dedupe(settings: Settings | None = None) -> DedupeStore:
    settings = settings or get_settings()
    if settings.redis_url:
        return RedisDedupe(settings.redis_url)
    return DatabaseDedupe()
