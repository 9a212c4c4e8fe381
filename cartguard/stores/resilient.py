"""The tracker store of ``endpoints.scale.yml``: redacting, and patient with a restarting database.

Rasa sends the bot's replies *before* it saves the turn. If the database blinks at that moment
(a PostgreSQL restart or fail-over takes a few seconds), stock Rasa raises and the turn the
shopper has already seen is never stored. This store retries reads and writes for a bounded
grace period (``outage_grace_seconds``, default 20 s), logging one clear line, and only then
raises :class:`TrackerDatabaseUnavailable`. The Redis lock is held meanwhile, so no other
replica can interleave events of the same conversation.

Retrying is safe because a save appends only the events beyond the count already stored: a
write that did commit before the connection dropped is not written twice. Events reach the
broker through the outbox rows of the one attempt that commits (or, for another broker, after
it), so retries never publish twice.

A database that *refuses* (a restart: connections refused or closed) is waited for, for
loading and saving alike. A database that is *silent* (a dropped network path: no answer within
the query or connect timeout) is treated by what is at stake:

* loading a conversation (nothing has happened yet) is not retried: the shopper hears "please
  try again" after one query timeout instead of a frozen chat for the whole grace period;
* saving a turn is retried for the grace period like a refusal: Rasa has already sent the
  turn's replies, so the turn must be stored if the path comes back in time. Attempts that
  were given up on never commit late (see the parent store), so only one attempt stores it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from cartguard.stores.tracker_store import RedactingSQLTrackerStore, TrackerDatabaseSilent

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_GRACE_SECONDS = 20.0
_FIRST_DELAY = 0.25
_MAX_DELAY = 2.0

#: libpq's words for a connect attempt that got no answer (connect_timeout), not a refusal
_SILENT_MARKERS = ("timeout expired", "timed out")


class TrackerDatabaseUnavailable(RuntimeError):
    """The tracker database stayed unreachable for the whole grace period."""


def _grace(value: Any) -> float:
    if value in (None, ""):
        return DEFAULT_GRACE_SECONDS
    try:
        grace = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"outage_grace_seconds in endpoints.scale.yml must be a number of seconds, "
            f"got {value!r}"
        ) from exc
    if grace < 0:
        raise ValueError("outage_grace_seconds must not be negative")
    return grace


class ResilientRedactingSQLTrackerStore(RedactingSQLTrackerStore):
    """:class:`RedactingSQLTrackerStore` that waits out a short database outage."""

    def __init__(self, *args: Any, outage_grace_seconds: Any = None, **kwargs: Any) -> None:
        self.outage_grace_seconds = _grace(outage_grace_seconds)
        super().__init__(*args, **kwargs)

    async def _patiently(
        self, what: str, attempt: Callable[[], Awaitable[T]], *, through_silence: bool = False
    ) -> T:
        deadline = time.monotonic() + self.outage_grace_seconds
        delay = _FIRST_DELAY
        warned = False
        while True:
            try:
                result = await attempt()
            except (TrackerDatabaseSilent, PoolTimeout, OperationalError, InterfaceError) as exc:
                reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0:1]
                silent = not isinstance(exc, (OperationalError, InterfaceError)) or any(
                    marker in "; ".join(reason) for marker in _SILENT_MARKERS
                )
                if silent and not through_silence:
                    raise TrackerDatabaseUnavailable(
                        f"the tracker database is not answering ({'; '.join(reason)}); the "
                        f"conversation turn was not handled"
                    ) from exc
                if time.monotonic() + delay > deadline:
                    raise TrackerDatabaseUnavailable(
                        f"the tracker database did not answer for "
                        f"{self.outage_grace_seconds:.0f} s while trying to {what} "
                        f"({'; '.join(reason) or type(exc).__name__}); the conversation "
                        f"turn was not stored"
                    ) from exc
                if not warned:
                    log.warning(
                        "tracker database unavailable while trying to %s (%s); retrying for "
                        "up to %.0f s",
                        what,
                        "; ".join(reason) or type(exc).__name__,
                        self.outage_grace_seconds,
                    )
                    warned = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_DELAY)
                continue
            if warned:
                log.warning("tracker database is back; %s succeeded", what)
            return result

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        parent = super().retrieve
        return await self._patiently("load a conversation", lambda: parent(sender_id))

    async def retrieve_full_tracker(self, conversation_id: str) -> DialogueStateTracker | None:
        parent = super().retrieve_full_tracker
        return await self._patiently("load a conversation", lambda: parent(conversation_id))

    async def save(self, tracker: DialogueStateTracker) -> None:
        parent_save = super().save
        await self._patiently(
            "save a conversation turn", lambda: parent_save(tracker), through_silence=True
        )
