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

With the redacting tracker store, the RabbitMQ broker publishes from the transactional outbox
(:mod:`cartguard.stores.outbox`): the store writes each event's outbox row in the transaction
that stores the event, and this broker's relay publishes the rows with publisher confirms.
Every connection to RabbitMQ is bounded in time (connect timeout, AMQP heartbeat, publish
timeout); RabbitMQ being down at start-up no longer stops Rasa: events wait in the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import aio_pika
from rasa.core.brokers.pika import PikaEventBroker
from rasa.core.brokers.sql import SQLEventBroker
from sqlalchemy.engine import Engine

from cartguard.settings import get_settings
from cartguard.stores.outbox import OutboxRelay
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
    """Rasa's RabbitMQ event broker: redacting, bounded in time, relaying the event outbox.

    Paired with the redacting tracker store (the set-up of ``endpoints.scale.yml``), events
    reach RabbitMQ only through :class:`~cartguard.stores.outbox.OutboxRelay`: stored first,
    then published with a publisher confirm, then marked sent (``message_id`` = outbox row id,
    for consumers that de-duplicate). Nothing is held in memory, so a replica killed during a
    RabbitMQ outage loses nothing; the outbox rows wait in PostgreSQL.

    :meth:`publish` (Rasa's interface, used only when this broker is paired with another
    tracker store) redacts and delivers through a bounded in-memory retry queue: oldest first,
    retried every ``outbox_retry_seconds`` while RabbitMQ is down, lost if the process dies.
    """

    #: the tracker store writes outbox rows and hands this broker its engine
    relays_outbox = True

    def __init__(
        self,
        host: str,
        username: str,
        password: str,
        *args: Any,
        sensitive_slots: Iterable[str] | None = None,
        outbox_retry_seconds: float = 1.0,
        outbox_limit: int = 100_000,
        connect_timeout_seconds: float = 5.0,
        heartbeat_seconds: int = 10,
        publish_timeout_seconds: float = 5.0,
        **kwargs: Any,
    ) -> None:
        self.sensitive_slots = _sensitive_slots(sensitive_slots)
        self.outbox_retry_seconds = float(outbox_retry_seconds)
        self.outbox_limit = int(outbox_limit)
        self.connect_timeout_seconds = float(connect_timeout_seconds)
        self.heartbeat_seconds = int(heartbeat_seconds)
        self.publish_timeout_seconds = float(publish_timeout_seconds)
        self._outbox: deque[tuple[dict[str, Any], dict[str, str] | None]] = deque()
        self._flushing = False
        self._outage_since: float | None = None
        self.relay: OutboxRelay | None = None
        self._connecting: asyncio.Task | None = None
        self._channel: aio_pika.abc.AbstractRobustChannel | None = None
        super().__init__(host, username, password, *args, **kwargs)

    # ----------------------------------------------------------------- connection

    async def _connect(self) -> aio_pika.abc.AbstractRobustConnection:
        """One bounded attempt (Rasa's own tries 20 times, 5 s apart, blocking start-up)."""
        return await asyncio.wait_for(
            aio_pika.connect_robust(
                url=self._configure_url(),
                host=self.host,
                port=self.port,
                login=self.username,
                password=self.password,
                timeout=self.connect_timeout_seconds,
                heartbeat=self.heartbeat_seconds,
                client_properties={"connection_name": "cartguard-rasa"},
            ),
            self.connect_timeout_seconds + 1,
        )

    async def connect(self) -> None:
        """Connect now if RabbitMQ answers; otherwise keep trying in the background.

        Rasa starts either way: with the outbox, events wait in the database meanwhile.
        """
        try:
            await super().connect()
        except Exception as exc:
            log.warning(
                "event broker: RabbitMQ at %s:%s is not reachable (%s); starting anyway, "
                "events wait in the outbox until it is",
                self.host,
                self.port,
                type(exc).__name__,
            )
            self._connecting = asyncio.get_running_loop().create_task(self._connect_later())

    async def _connect_later(self) -> None:
        while self._exchange is None:
            await asyncio.sleep(self.connect_timeout_seconds)
            try:
                await super().connect()
                log.warning("event broker: connected to RabbitMQ")
            except Exception as exc:
                log.debug("event broker: still no RabbitMQ (%s)", type(exc).__name__)
        if self.relay is not None:
            self.relay.wake()

    async def _set_up_exchange(
        self, channel: aio_pika.abc.AbstractRobustChannel
    ) -> aio_pika.abc.AbstractRobustExchange:
        # aio_pika's robust connection reopens after an outage only the channels it still
        # knows, and it knows them through a *weak* set; Rasa keeps the exchange, not the
        # channel. Once the garbage collector took the channel, the exchange kept a closed
        # one and every publish failed until the process restarted (the soak saw 7,914
        # events wait five minutes). Holding the channel keeps it reopened.
        self._channel = channel
        return await super()._set_up_exchange(channel)

    def is_ready(self) -> bool:
        return self._exchange is not None and super().is_ready()

    # ----------------------------------------------------------------- outbox relay

    def attach_outbox(self, engine: Engine) -> OutboxRelay:
        """Relay the outbox table in ``engine`` (called by the tracker store once)."""
        if self.relay is None:
            self.relay = OutboxRelay(engine, self._publish_confirmed, ready=self.is_ready)
            with contextlib.suppress(RuntimeError):  # no running loop yet: started on wake
                self.relay.start()
        return self.relay

    def outbox_committed(self) -> None:
        """The tracker store committed outbox rows: publish them now."""
        if self.relay is not None:
            self.relay.start()
            self.relay.wake()

    async def _publish_confirmed(self, body: str, message_id: int) -> None:
        """Publish one outbox row; returns only once RabbitMQ confirmed it."""
        exchange = self._exchange
        if exchange is None:
            raise ConnectionError("not connected to RabbitMQ")
        message = aio_pika.Message(
            body.encode(),
            message_id=str(message_id),
            content_type="application/json",
            app_id=self.rasa_environment,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        # the channel has publisher confirms on: this waits for RabbitMQ's ack (a nack raises)
        await asyncio.wait_for(
            exchange.publish(message, "", timeout=self.publish_timeout_seconds),
            self.publish_timeout_seconds + 1,
        )

    # ----------------------------------------------------------------- direct publishing

    def publish(self, event: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().publish(redact_event(event, self.sensitive_slots), headers)

    @property
    def outbox_size(self) -> int:
        """Events of direct :meth:`publish` calls accepted but not yet confirmed."""
        return len(self._outbox)

    async def _publish(self, event: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        # Called in a task per event, in publish order; the first one drains the queue.
        if len(self._outbox) >= self.outbox_limit:
            self._outbox.popleft()
            log.error(
                "event broker: retry queue full (%d events, RabbitMQ unreachable); dropped "
                "the oldest event - the tracker store still holds it",
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
        """Publish what is pending for a few seconds, say what is left, then close."""
        if self._connecting is not None:
            self._connecting.cancel()
        if self.relay is not None:
            left = await self.relay.drain(timeout=5.0)
            await self.relay.stop()
            if left:
                log.warning(
                    "event broker: %d events are still in the outbox at shutdown; any replica "
                    "publishes them once RabbitMQ answers",
                    left,
                )
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
