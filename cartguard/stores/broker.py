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

from collections.abc import Iterable
from typing import Any

from rasa.core.brokers.pika import PikaEventBroker
from rasa.core.brokers.sql import SQLEventBroker

from cartguard.settings import get_settings
from cartguard.stores.redaction import redact_event
from cartguard.stores.tracker_store import _sensitive_slots


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
    """Rasa's RabbitMQ event broker, redacting each event before queueing it."""

    def __init__(
        self,
        host: str,
        username: str,
        password: str,
        *args: Any,
        sensitive_slots: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.sensitive_slots = _sensitive_slots(sensitive_slots)
        super().__init__(host, username, password, *args, **kwargs)

    def publish(self, event: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().publish(redact_event(event, self.sensitive_slots), headers)
