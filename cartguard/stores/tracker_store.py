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

**Off the event loop, bounded in time.** Rasa's SQL tracker store runs its queries on the event
loop: one slow database freezes every conversation of the replica. Here every read and write
runs on the store's own worker threads, and the caller waits at most
``query_timeout_seconds`` (default 5 s) before :class:`TrackerDatabaseSilent` is raised (the
channel then tells the shopper to try again). Work that was given up on is not done late: it
does not start after its deadline, and rolls back instead of committing. On PostgreSQL the
engine gets an explicit small pool (``pool_size`` / ``max_overflow``, default 5 / 5), a pool
timeout, pre-ping and libpq's connect timeout, TCP keepalives and user timeout
(:func:`cartguard.shop.db.postgres_engine_options`).

**Events for the broker** are written to the outbox table (:mod:`cartguard.stores.outbox`) in
the same transaction as the events, when the broker relays the outbox (the RabbitMQ broker of
``endpoints.scale.yml``); any other broker is handed the events after the commit, never before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
from rasa.shared.core.constants import REQUESTED_SLOT
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from cartguard.privacy.scrub import scrub_sqlite
from cartguard.settings import get_settings
from cartguard.shop.db import postgres_engine_options, private_sqlite_file
from cartguard.stores import outbox
from cartguard.stores.redaction import expected_secrets, redact_event

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_QUERY_TIMEOUT_SECONDS = 5.0
DEFAULT_POOL_SIZE = 5
DEFAULT_MAX_OVERFLOW = 5


class TrackerDatabaseSilent(RuntimeError):
    """The tracker database did not answer within the query timeout (no error, no answer)."""


def _number(name: str, value: Any, default: float) -> float:
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} of the tracker store must be a number, got {value!r}") from exc
    if number <= 0:
        raise ValueError(f"{name} of the tracker store must be positive, got {value!r}")
    return number


#: first key of the PostgreSQL advisory lock a save holds for its conversation ("CG" + 1)
_SAVE_LOCK_SPACE = 0x4347_0001


def _in_time(deadline: float) -> None:
    """Raise when the caller has stopped waiting (work must not be done late)."""
    if time.monotonic() > deadline:
        raise TrackerDatabaseSilent("gave up: the caller stopped waiting")


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
        query_timeout_seconds: Any = None,
        pool_size: Any = None,
        max_overflow: Any = None,
        **kwargs: Any,
    ) -> None:
        host = url or host
        if not host and not any(part in kwargs for part in _URL_PARTS):
            host = get_settings().tracker_database_url
        if host and host.startswith("sqlite:///"):
            path = host.split("///", 1)[1]
            if path and path != ":memory:":
                private_sqlite_file(Path(path))  # 0600 before Rasa's engine creates it
        # Read the policy before connecting: a broken security.yml must stop start-up.
        self.sensitive_slots = _sensitive_slots(sensitive_slots)
        self.query_timeout_seconds = _number(
            "query_timeout_seconds", query_timeout_seconds, DEFAULT_QUERY_TIMEOUT_SECONDS
        )
        pool = int(_number("pool_size", pool_size, DEFAULT_POOL_SIZE))
        overflow = int(max_overflow) if max_overflow not in (None, "") else DEFAULT_MAX_OVERFLOW
        super().__init__(domain=domain, host=host, event_broker=event_broker, **kwargs)
        if self.engine.dialect.name == "postgresql":
            self._bound_engine(pool, overflow)
        # a query stuck on a dead connection holds one of these threads, never the event loop
        self._executor = ThreadPoolExecutor(
            max_workers=pool + overflow, thread_name_prefix="cartguard-tracker-db"
        )
        self.outbox_relay = None
        if event_broker is not None and getattr(event_broker, "relays_outbox", False):
            outbox.create_table(self.engine)
            self.outbox_relay = event_broker.attach_outbox(self.engine)
        log.info(
            "redacting tracker store ready (%s, %d sensitive slots)",
            self.engine.dialect.name,
            len(self.sensitive_slots),
        )

    def _bound_engine(self, pool_size: int, max_overflow: int) -> None:
        """Replace Rasa's engine (pool of 50 + 100, no time bounds) with a bounded one."""
        url = self.engine.url
        options = postgres_engine_options(url, pool_size=pool_size, max_overflow=max_overflow)
        # keep what Rasa passes to the driver (the POSTGRESQL_SCHEMA search path); a
        # transaction left idle (its process stuck or gone) gives its row locks back
        connect_args = options["connect_args"]
        connect_args.update(create_engine_kwargs(url).get("connect_args", {}))
        connect_args["options"] = (
            f"{connect_args.get('options', '')} -c idle_in_transaction_session_timeout=30000"
        ).strip()
        self.engine.dispose()
        self.engine = sa.create_engine(url, **options)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)

    async def _bounded(self, what: str, work: Callable[..., T], *args: Any) -> T:
        """Run ``work(deadline, *args)`` on the store's threads; wait at most the query timeout."""
        timeout = self.query_timeout_seconds
        deadline = time.monotonic() + timeout
        future = asyncio.get_running_loop().run_in_executor(self._executor, work, deadline, *args)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError as exc:
            raise TrackerDatabaseSilent(
                f"the tracker database did not answer within {timeout:g} s while trying to {what}"
            ) from exc

    # ----------------------------------------------------------------- reads

    def _retrieve_sync(
        self, deadline: float, sender_id: str, fetch_events_from_all_sessions: bool
    ) -> DialogueStateTracker | None:
        _in_time(deadline)
        with self.session_scope() as session:
            rows = self._event_query(
                session, sender_id, fetch_events_from_all_sessions=fetch_events_from_all_sessions
            ).all()
            events = [json.loads(row.data) for row in rows]
        if self.domain and events:
            return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        return None

    async def _retrieve(
        self, sender_id: str, fetch_events_from_all_sessions: bool
    ) -> DialogueStateTracker | None:
        return await self._bounded(
            "load a conversation", self._retrieve_sync, sender_id, fetch_events_from_all_sessions
        )

    def _keys_sync(self, deadline: float) -> list[str]:
        _in_time(deadline)
        with self.session_scope() as session:
            return [sid for (sid,) in session.query(self.SQLEvent.sender_id).distinct().all()]

    async def keys(self) -> Iterable[str]:
        return await self._bounded("list conversations", self._keys_sync)

    # ----------------------------------------------------------------- writes

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """Nothing to do: :meth:`save` hands the broker exactly the events it committed."""

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Append the events not yet stored for this session, each one redacted.

        When this turn asked to forget the conversation (the ``forget_requested`` marker that
        "forget this conversation" and erasure set), everything stored for it is deleted and
        only the events after the marker are kept: deleting from an action instead would be
        undone here, because Rasa saves the whole in-memory tracker at the end of the turn.

        The broker gets the same events: through the outbox rows written in this transaction,
        or (another broker) handed over after the commit.
        """
        written, forgotten = await self._bounded(
            "save a conversation turn", self._save_sync, tracker
        )
        if self.outbox_relay is not None:
            if written:
                self.event_broker.outbox_committed()  # type: ignore[union-attr]
        elif self.event_broker is not None:
            for data in written:
                self.event_broker.publish({"sender_id": tracker.sender_id, **data})
        if forgotten:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, scrub_sqlite, self.engine
            )
            log.info("conversation forgotten at the shopper's request; stored events deleted")

    def _save_sync(
        self, deadline: float, tracker: DialogueStateTracker
    ) -> tuple[list[dict[str, Any]], bool]:
        _in_time(deadline)
        forgotten = False
        written: list[dict[str, Any]] = []
        with self.session_scope() as session:
            # One save of a conversation at a time, to the end of its transaction. Rasa's lock
            # store already serialises turns, but a save given up on (a silent database) may
            # still commit once the database answers: a retry that counted the stored events
            # before that commit would store the turn twice, out of order. The retry waits for
            # the earlier transaction here and counts what it left.
            if self.engine.dialect.name == "postgresql":
                session.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(:sender))"),
                    {"space": _SAVE_LOCK_SPACE, "sender": tracker.sender_id},
                )
            elif self.engine.dialect.name == "sqlite":
                # its one write lock, taken before counting (pysqlite would only begin the
                # transaction at the first INSERT, after both saves had counted)
                session.execute(sa.text("BEGIN IMMEDIATE"))
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
                written.append(data)
            if self.outbox_relay is not None:
                if forgotten:
                    outbox.forget(session, tracker.sender_id)
                outbox.add_rows(session, tracker.sender_id, written, time.time())
            _in_time(deadline)  # the caller gave up: roll back rather than commit late
            session.commit()
        return written, forgotten
