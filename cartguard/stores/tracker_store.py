"""The PII-stripping tracker store: Rasa's SQL tracker store that redacts before it writes.

Configure in ``endpoints.yml``::

    tracker_store:
      type: cartguard.stores.tracker_store.RedactingSQLTrackerStore
      # url: postgresql://user@host/db   (default: CARTGUARD_TRACKER_DATABASE_URL / SQLite)

Rasa's ``SQLTrackerStore.save`` appends the events past the number already stored for the
current session. This store keeps that contract exactly: each event is replaced by its
redacted copy one for one (same count, same order, same type), so the next save appends the
right events and a reloaded tracker replays cleanly. The live tracker in memory is not
changed; only what reaches the database (and the event broker) is redacted.

Start Rasa through ``python -m cartguard.rasa_main`` so that a mistake in this configuration
stops the server instead of silently falling back to an in-memory store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import REQUESTED_SLOT
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from cartguard.privacy.scrub import scrub_sqlite
from cartguard.settings import get_settings
from cartguard.stores.redaction import expected_secrets, redact_event

log = logging.getLogger(__name__)

_URL_PARTS = ("dialect", "db", "username", "password", "port", "login_db", "query")


def _sensitive_slots(configured: Iterable[str] | None) -> frozenset[str]:
    if configured is not None:
        return frozenset(configured)
    from cartguard.stepup.policy import get_policy

    return get_policy().sensitive_slots


def redacted_events(
    tracker: DialogueStateTracker, start: int, sensitive_slots: frozenset[str]
) -> list[tuple[str, dict[str, Any]]]:
    """``(type_name, redacted dict)`` for ``tracker.events[start:]``, one per event.

    Walks the whole tracker so that the value of ``requested_slot`` at each user message is
    known: when the bot had asked for a code, "123 456" is redacted as a one-time code.
    """
    requested: Any = None
    out: list[tuple[str, dict[str, Any]]] = []
    for index, event in enumerate(tracker.events):
        if isinstance(event, SlotSet) and event.key == REQUESTED_SLOT:
            requested = event.value
        if index < start:
            continue
        expect: frozenset[str] = frozenset()
        if isinstance(event, UserUttered):
            expect = expected_secrets(event.intent_name, requested)
        out.append((event.type_name, redact_event(event.as_dict(), sensitive_slots, expect)))
    return out


FORGET_SLOT = "forget_requested"


def forget_marker_index(tracker: DialogueStateTracker, start: int) -> int | None:
    """Index of the last ``forget_requested`` marker among the events not stored yet."""
    for index in range(len(tracker.events) - 1, start - 1, -1):
        event = tracker.events[index]
        if isinstance(event, SlotSet) and event.key == FORGET_SLOT and event.value:
            return index
    return None


class RedactingSQLTrackerStore(SQLTrackerStore):
    """SQL tracker store whose rows (and broker messages) never hold personal data in clear."""

    def __init__(
        self,
        domain: Domain | None = None,
        host: str | None = None,
        event_broker: EventBroker | None = None,
        sensitive_slots: Iterable[str] | None = None,
        url: str | None = None,
        **kwargs: Any,
    ) -> None:
        host = url or host
        if not host and not any(part in kwargs for part in _URL_PARTS):
            host = get_settings().tracker_database_url
        if host and host.startswith("sqlite:///"):
            path = host.split("///", 1)[1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Read the policy before connecting: a broken security.yml must stop start-up.
        self.sensitive_slots = _sensitive_slots(sensitive_slots)
        super().__init__(domain=domain, host=host, event_broker=event_broker, **kwargs)
        log.info(
            "redacting tracker store ready (%s, %d sensitive slots)",
            self.engine.dialect.name,
            len(self.sensitive_slots),
        )

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """Publish only the new events, redacted (whatever broker is configured)."""
        if self.event_broker is None:
            return
        stored = await self.retrieve(tracker.sender_id)
        offset = len(stored.events) if stored else 0
        for _type_name, data in redacted_events(tracker, offset, self.sensitive_slots):
            self.event_broker.publish({"sender_id": tracker.sender_id, **data})

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Append the events not yet stored for this session, each one redacted.

        When this turn asked to forget the conversation (the ``forget_requested`` marker that
        "forget this conversation" and erasure set), everything stored for it is deleted and
        only the events after the marker are kept: deleting from an action instead would be
        undone here, because Rasa saves the whole in-memory tracker at the end of the turn.
        """
        await self.stream_events(tracker)
        forgotten = False
        with self.session_scope() as session:
            stored = self._event_query(
                session, tracker.sender_id, fetch_events_from_all_sessions=False
            ).count()
            marker = forget_marker_index(tracker, stored)
            if marker is not None:
                session.query(self.SQLEvent).filter(
                    self.SQLEvent.sender_id == tracker.sender_id
                ).delete(synchronize_session=False)
                stored, forgotten = marker + 1, True
            for type_name, data in redacted_events(tracker, stored, self.sensitive_slots):
                intent = ((data.get("parse_data") or {}).get("intent") or {}).get("name")
                session.add(
                    self.SQLEvent(
                        sender_id=tracker.sender_id,
                        type_name=type_name,
                        timestamp=data.get("timestamp"),
                        intent_name=intent,
                        action_name=data.get("name"),
                        data=json.dumps(data),
                    )
                )
            session.commit()
        if forgotten:
            scrub_sqlite(self.engine)
            log.info("conversation forgotten at the shopper's request; stored events deleted")
