"""The transactional event outbox: stored and queued together, published once, in order.

RabbitMQ is a stand-in exchange here (it confirms, refuses, or is "down"); the database is real:
SQLite for the single-process cases and a PostgreSQL cluster of our own for two relays racing
with ``FOR UPDATE SKIP LOCKED``. The full scenario with a real RabbitMQ and a SIGKILLed replica
is in ``test_replicas.py`` and ``make soak``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from faker import Faker
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bench.services import OwnPostgres, create_database, started
from bench.services import Services as ServiceAddresses
from cartguard.stores import outbox, tracker_store
from cartguard.stores.broker import RedactingPikaEventBroker
from cartguard.stores.outbox import OutboxRelay
from cartguard.stores.resilient import ResilientRedactingSQLTrackerStore

fake = Faker()
DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet]
responses:
  utter_greet: [{text: "Hello!"}]
"""
)


class FakeConnection:
    is_closed = False


class FakeExchange:
    """RabbitMQ's exchange as the broker sees it: confirms each message, or is down."""

    def __init__(self) -> None:
        self.down = False
        self.messages: list[tuple[str, dict]] = []  # (message_id, body)

    async def publish(self, message, routing_key: str, timeout: float | None = None) -> None:
        if self.down:
            raise ConnectionError("channel closed")
        self.messages.append((message.message_id, json.loads(message.body)))

    def texts(self, sender_id: str) -> list[str]:
        return [b.get("text") for _, b in self.messages if b["sender_id"] == sender_id]


def replica_broker(exchange: FakeExchange) -> RedactingPikaEventBroker:
    """A broker "connected" to the stand-in exchange (as after a successful connect)."""
    broker = RedactingPikaEventBroker(
        "localhost", "guest", "guest", queues=["q"], sensitive_slots=[]
    )
    broker._exchange = exchange
    broker._connection = FakeConnection()
    return broker


def replica_store(url: str, broker: RedactingPikaEventBroker) -> ResilientRedactingSQLTrackerStore:
    store = ResilientRedactingSQLTrackerStore(
        domain=DOMAIN, host=url, event_broker=broker, sensitive_slots=[]
    )
    broker.relay.poll_seconds = 0.05
    return store


def turns(sender_id: str, texts: list[str]) -> DialogueStateTracker:
    events = [ActionExecuted("action_session_start"), SessionStarted()]
    events.append(ActionExecuted("action_listen"))
    for text in texts:
        events += [
            UserUttered(text, {"name": "greet", "confidence": 1.0}),
            ActionExecuted("utter_greet"),
            BotUttered("Hello!"),
            ActionExecuted("action_listen"),
        ]
    return DialogueStateTracker.from_events(sender_id, events)


def stored_events(url: str, sender_id: str) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT data FROM events WHERE sender_id = :s ORDER BY id"),
                {"s": sender_id},
            )
            return [json.loads(r[0]) for r in rows]
    finally:
        engine.dispose()


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


@pytest.fixture()
def sqlite_url(tmp_path: Path, data_dir: Path) -> str:
    return f"sqlite:///{tmp_path / 'tracker.db'}"


async def test_every_stored_event_is_published_once_in_order_with_its_row_id(sqlite_url) -> None:
    exchange = FakeExchange()
    broker = replica_broker(exchange)
    store = replica_store(sqlite_url, broker)
    texts = [fake.sentence() for _ in range(3)]
    await store.save(turns("conv-a", texts))

    stored = stored_events(sqlite_url, "conv-a")
    await until(lambda: len(exchange.messages) == len(stored))
    assert [body for _, body in exchange.messages] == [{"sender_id": "conv-a", **e} for e in stored]
    ids = [int(message_id) for message_id, _ in exchange.messages]
    assert ids == sorted(set(ids))  # unique and increasing: consumers can de-duplicate
    with store.engine.connect() as conn:
        unsent = conn.execute(sa.text("SELECT count(*) FROM event_outbox WHERE sent_at IS NULL"))
        assert unsent.scalar() == 0
    await broker.relay.stop()


async def test_a_save_that_does_not_commit_queues_nothing(
    sqlite_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    exchange = FakeExchange()
    broker = replica_broker(exchange)
    store = replica_store(sqlite_url, broker)
    real_add_rows = outbox.add_rows

    def add_then_fail(*args, **kwargs):
        real_add_rows(*args, **kwargs)
        raise RuntimeError("the connection dropped before the commit")

    monkeypatch.setattr(outbox, "add_rows", add_then_fail)
    with pytest.raises(RuntimeError):
        await store.save(turns("conv-b", ["hello"]))
    await asyncio.sleep(0.2)  # several relay polls

    assert stored_events(sqlite_url, "conv-b") == []
    assert exchange.messages == []  # never "published but not stored"
    assert outbox.pending_count(store.engine) == 0
    await broker.relay.stop()


async def test_a_replica_killed_during_a_broker_outage_loses_nothing(sqlite_url) -> None:
    exchange = FakeExchange()
    exchange.down = True
    doomed = replica_broker(exchange)
    store = replica_store(sqlite_url, doomed)
    for n in range(3):
        await store.save(turns(f"conv-{n}", [fake.sentence() for _ in range(n + 1)]))
    await asyncio.sleep(0.2)
    assert exchange.messages == []
    await doomed.relay.stop()  # SIGKILL: whatever this process held in memory is gone
    del doomed, store

    exchange.down = False  # RabbitMQ is back; another replica's relay takes over
    survivor = replica_broker(exchange)
    replica_store(sqlite_url, survivor)
    expected = {f"conv-{n}": stored_events(sqlite_url, f"conv-{n}") for n in range(3)}
    total = sum(len(v) for v in expected.values())
    await until(lambda: len(exchange.messages) == total)
    for sender_id, events in expected.items():
        assert [b for _, b in exchange.messages if b["sender_id"] == sender_id] == [
            {"sender_id": sender_id, **e} for e in events
        ]
    assert len({message_id for message_id, _ in exchange.messages}) == total
    await survivor.relay.stop()


async def test_an_outage_mid_batch_publishes_the_rest_later_without_repeating(
    sqlite_url,
) -> None:
    class FailsOnce(FakeExchange):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        async def publish(self, message, routing_key, timeout=None):
            self.calls += 1
            if self.calls == 4:  # the connection drops after three confirms
                raise ConnectionError("connection reset")
            await super().publish(message, routing_key, timeout)

    exchange = FailsOnce()
    broker = replica_broker(exchange)
    store = replica_store(sqlite_url, broker)
    await store.save(turns("conv-c", ["one", "two"]))
    stored = stored_events(sqlite_url, "conv-c")
    await until(lambda: len(exchange.messages) == len(stored))
    assert [b for _, b in exchange.messages] == [{"sender_id": "conv-c", **e} for e in stored]
    await broker.relay.stop()


# ------------------------------------------------------------------ PostgreSQL, two relays


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    own = OwnPostgres()
    own.init()
    with started(own):
        create_database("outbox_test", ServiceAddresses(pg_url=own.url))
        yield f"{own.url}/outbox_test"


@pytest.mark.services
async def test_two_relays_on_postgresql_publish_each_row_once_and_keep_conversation_order(
    pg_url: str, data_dir: Path
) -> None:
    engine = sa.create_engine(pg_url)
    outbox.create_table(engine)
    conversations = [f"conv-pg-{n}" for n in range(12)]
    with engine.begin() as conn:  # interleaved, as concurrent turns would write them
        for step in range(25):
            for sender in conversations:
                outbox.add_rows(conn, sender, [{"event": "user", "text": f"{step}"}], 0.0)
    total = 25 * len(conversations)
    published: list[tuple[int, str, str]] = []

    def publisher(name: str):
        async def publish(body: str, row_id: int) -> None:
            # relay "a" waits longer for its confirms, so "b" runs past rows "a" still holds
            await asyncio.sleep(0.02 if name == "a" else 0)
            event = json.loads(body)
            published.append((row_id, event["sender_id"], event["text"]))

        return publish

    relays = [OutboxRelay(engine, publisher(n), batch=7, poll_seconds=0.01) for n in "ab"]
    for relay in relays:
        relay.start()
    try:
        await until(lambda: len(published) >= total, timeout=60)
        await asyncio.sleep(0.2)  # a duplicate would show up now
    finally:
        for relay in relays:
            await relay.stop()
        engine.dispose()

    assert len(published) == total
    assert len({row_id for row_id, _, _ in published}) == total
    assert all(relay.published > 0 for relay in relays)  # both relays took part
    per_conversation: dict[str, list[int]] = defaultdict(list)
    for _, sender, text in published:
        per_conversation[sender].append(int(text))
    assert all(steps == list(range(25)) for steps in per_conversation.values())


@pytest.mark.services
def test_a_batch_never_skips_over_rows_another_relay_holds_in_the_middle_of_a_conversation(
    pg_url: str,
) -> None:
    """Two relays scanning at the same moment can each lock part of one conversation.

    ``FOR UPDATE SKIP LOCKED`` locks rows as the scan returns them: relay A may lock a
    conversation's first rows, relay B the next ones, and A, skipping B's, its later ones. A may
    then publish only up to the first row it does not hold; the rest waits for a later round.
    """
    engine = sa.create_engine(pg_url)
    outbox.create_table(engine)
    sender = "conv-gap"
    with engine.begin() as conn:
        conn.execute(outbox.outbox.delete())
        outbox.add_rows(conn, sender, [{"event": "user", "text": f"{n}"} for n in range(10)], 0.0)
        ids = [row.id for row in conn.execute(sa.select(outbox.outbox.c.id).order_by("id"))]
    other = engine.connect()  # relay B, holding rows 3 to 5 of the conversation
    other_tx = other.begin()
    other.execute(
        sa.select(outbox.outbox.c.id).where(outbox.outbox.c.id.in_(ids[3:6])).with_for_update()
    ).all()
    batch = outbox._Batch(engine)
    try:
        taken = [row.id for row in batch.take(50)]
    finally:
        batch.abandon()
        other_tx.rollback()
        other.close()
        engine.dispose()
    assert taken == ids[:3]


def test_tracker_store_settings_are_checked(sqlite_url) -> None:
    with pytest.raises(ValueError, match="query_timeout_seconds"):
        tracker_store.RedactingSQLTrackerStore(
            domain=DOMAIN, host=sqlite_url, sensitive_slots=[], query_timeout_seconds="soon"
        )


def test_a_relay_that_goes_on_failing_tells_the_operator_again_with_the_error(
    sqlite_url, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """One warning at the start of a failure is not enough: the soak's relay, stuck after
    RabbitMQ came back, logged nothing more for five minutes."""
    monkeypatch.setattr(outbox, "STILL_FAILING_EVERY_SECONDS", 0.0)
    relay = OutboxRelay(sa.create_engine(sqlite_url), publish=None)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="cartguard.stores.outbox"):
        relay._note_failure(ConnectionResetError("reset by peer"))
        relay._note_failure(RuntimeError("channel closed"))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "still cannot publish" in errors[0], errors
    assert "RuntimeError: channel closed" in errors[0]
