"""Event brokers that redact every event before it leaves the process.

Configure in ``endpoints.yml``, e.g.::

    event_broker:
      type: cartguard.stores.broker.RedactingPikaEventBroker
      url: localhost
      username: guest
      password: guest
      queues: [cartguard_events]

or ``type: cartguard.stores.broker.RedactingSQLEventBroker`` (``url``/``db`` as for Rasa's
SQL broker; default: ``$CARTGUARD_DATA_DIR/events.db``). The redaction is the same as the
tracker store's, so an event looks the same in the database and on the queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from rasa.core.brokers.pika import PikaEventBroker
from rasa.core.brokers.sql import SQLEventBroker

from cartguard.settings import get_settings
from cartguard.stores.redaction import redact_event
from cartguard.stores.tracker_store import _sensitive_slots

log = logging.getLogger(__name__)


class RedactingSQLEventBroker(SQLEventBroker):
    """Rasa's SQL event broker, redacting each event before inserting it."""

    def __init__(
        self,
        dialect: str = "sqlite",
        host: str | None = None,
        port: int | None = None,
        db: str | None = None,
        username: str | None = None,
        password: str | None = None,
        sensitive_slots: Iterable[str] | None = None,
    ) -> None:
        if db is None:
            db = str(get_settings().data_dir / "events.db") if dialect == "sqlite" else "rasa"
            if dialect == "sqlite":
                get_settings().data_dir.mkdir(parents=True, exist_ok=True)
        self.sensitive_slots = _sensitive_slots(sensitive_slots)
        super().__init__(dialect, host, port, db, username, password)

    def publish(self, event: dict[str, Any]) -> None:
        super().publish(redact_event(event, self.sensitive_slots))


class RedactingPikaEventBroker(PikaEventBroker):
    """Rasa's RabbitMQ event broker, redacting each event before queueing it.

    Delivery goes through an in-process outbox (added for the scale work, see
    docs/scaling.md): an event leaves the outbox only once RabbitMQ confirmed it, oldest first,
    retried every ``outbox_retry_seconds`` while RabbitMQ is down. Stock Rasa keeps a failed
    event for one retry at reconnection and loses it if that retry fails too (seen with a
    30 s ``rabbitmqctl stop_app``). Delivery is at-least-once: a publish cut off mid-way is
    sent again. The outbox lives in memory; events still in it when the process stops are
    reported in the log (the tracker store has them all).
    """

    def __init__(
        self,
        host: str,
        username: str,
        password: str,
        *args: Any,
        sensitive_slots: Iterable[str] | None = None,
        outbox_retry_seconds: float = 1.0,
        outbox_limit: int = 100_000,
        **kwargs: Any,
    ) -> None:
        self.sensitive_slots = _sensitive_slots(sensitive_slots)
        self.outbox_retry_seconds = float(outbox_retry_seconds)
        self.outbox_limit = int(outbox_limit)
        self._outbox: deque[tuple[dict[str, Any], dict[str, str] | None]] = deque()
        self._flushing = False
        self._outage_since: float | None = None
        super().__init__(host, username, password, *args, **kwargs)

    def publish(self, event: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().publish(redact_event(event, self.sensitive_slots), headers)

    @property
    def outbox_size(self) -> int:
        """Events accepted but not yet confirmed by RabbitMQ."""
        return len(self._outbox)

    async def _publish(self, event: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        # Called in a task per event, in publish order; the first one drains the outbox.
        if len(self._outbox) >= self.outbox_limit:
            self._outbox.popleft()
            log.error(
                "event broker: outbox full (%d events, RabbitMQ unreachable); dropped the "
                "oldest event - the tracker store still holds it",
                self.outbox_limit,
            )
        self._outbox.append((event, headers))
        if self._flushing:
            return
        self._flushing = True
        try:
            await self._flush_outbox()
        finally:
            self._flushing = False

    async def _flush_outbox(self) -> None:
        while self._outbox:
            event, headers = self._outbox[0]
            try:
                if self._exchange is None:
                    raise ConnectionError("not connected to RabbitMQ")
                await asyncio.wait_for(
                    self._exchange.publish(self._message(event, headers), ""),
                    timeout=max(5.0, self.outbox_retry_seconds),
                )
            except Exception as exc:  # any failure: keep it, try again shortly
                if self._outage_since is None:
                    self._outage_since = time.monotonic()
                    log.warning(
                        "event broker: RabbitMQ is not accepting events (%s); keeping them "
                        "in the outbox and retrying every %.0f s",
                        type(exc).__name__,
                        self.outbox_retry_seconds,
                    )
                await asyncio.sleep(self.outbox_retry_seconds)
                continue
            self._outbox.popleft()
            if self._outage_since is not None:
                log.warning(
                    "event broker: RabbitMQ is accepting events again after %.0f s; "
                    "delivering the %d held in the outbox",
                    time.monotonic() - self._outage_since,
                    len(self._outbox) + 1,
                )
                self._outage_since = None

    async def close(self) -> None:
        """Give the outbox a few seconds to empty, say what is left, then close."""
        deadline = time.monotonic() + 5.0
        while self._outbox and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if self._outbox:
            log.error(
                "event broker: %d events were not delivered to RabbitMQ before shutdown; "
                "they remain in the tracker store",
                len(self._outbox),
            )
        await super().close()
