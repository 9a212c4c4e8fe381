"""Fast checks of the scale tooling that need no running services (milliseconds each)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from pathlib import Path

import pytest
from faker import Faker
from hypothesis import given
from hypothesis import strategies as st
from rasa.core.brokers.broker import EventBroker
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.exc import OperationalError

from bench import balancer
from bench.checks import problems_in
from bench.driver import shopper_address
from bench.launcher import Stack, StackConfig, _unquote_env
from bench.services import Services
from cartguard.channels.inflight import client_message_id
from cartguard.stores import resilient
from cartguard.stores.resilient import ResilientRedactingSQLTrackerStore, TrackerDatabaseUnavailable
from cartguard.stores.tracker_store import RedactingSQLTrackerStore, TrackerDatabaseSilent

REPO = Path(__file__).resolve().parents[2]
DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet]
responses:
  utter_greet: [{text: "Hello!"}]
"""
)
fake = Faker()


class RecordingBroker(EventBroker):
    def __init__(self) -> None:
        self.published: list[dict] = []

    def publish(self, event: dict) -> None:
        self.published.append(event)


def _tracker(sender_id: str, texts: list[str]) -> DialogueStateTracker:
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


def _outage() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))


@pytest.fixture()
def store(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(resilient, "_FIRST_DELAY", 0.01)
    broker = RecordingBroker()
    return ResilientRedactingSQLTrackerStore(
        domain=DOMAIN,
        host=f"sqlite:///{tmp_path / 'tracker.db'}",
        event_broker=broker,
        outage_grace_seconds="5",
    )


async def test_a_save_during_a_short_outage_is_stored_and_published_exactly_once(
    store: ResilientRedactingSQLTrackerStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = _tracker("conv-outage", [fake.sentence() for _ in range(3)])
    real_save = RedactingSQLTrackerStore.save
    failures = {"left": 2}

    async def flaky_save(self, tracker):
        if failures["left"]:
            failures["left"] -= 1
            raise _outage()
        await real_save(self, tracker)

    monkeypatch.setattr(RedactingSQLTrackerStore, "save", flaky_save)
    with caplog.at_level(logging.WARNING, logger="cartguard.stores.resilient"):
        await store.save(tracker)

    stored = await store.retrieve_full_tracker("conv-outage")
    assert stored is not None and len(stored.events) == len(tracker.events)
    assert len(store.event_broker.published) == len(tracker.events)  # not once per attempt
    assert "tracker database unavailable" in caplog.text
    assert "tracker database is back" in caplog.text


async def test_an_outage_longer_than_the_grace_period_fails_with_a_readable_error(
    store: ResilientRedactingSQLTrackerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.outage_grace_seconds = 0.05

    async def down(self, sender_id):
        raise _outage()

    monkeypatch.setattr(RedactingSQLTrackerStore, "retrieve", down)
    with pytest.raises(TrackerDatabaseUnavailable) as raised:
        await store.retrieve("conv-down")
    message = str(raised.value)
    assert "tracker database did not answer" in message
    assert "server closed the connection unexpectedly" in message


async def test_a_later_save_appends_only_the_new_events(
    store: ResilientRedactingSQLTrackerStore,
) -> None:
    await store.save(_tracker("conv-grow", ["one"]))
    live = await store.retrieve("conv-grow")  # what Rasa works on for the next turn
    for event in list(_tracker("conv-grow", ["two"]).events)[3:]:
        live.update(event)
    await store.save(live)
    stored = await store.retrieve_full_tracker("conv-grow")
    assert [e.text for e in stored.events if isinstance(e, UserUttered)] == ["one", "two"]
    assert len(store.event_broker.published) == len(stored.events)


async def test_a_silent_database_fails_a_load_at_once_but_a_save_is_retried(
    store: ResilientRedactingSQLTrackerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"retrieve": 0, "save": 0}

    async def silent_retrieve(self, sender_id):
        calls["retrieve"] += 1
        raise TrackerDatabaseSilent("no answer within 5 s")

    monkeypatch.setattr(RedactingSQLTrackerStore, "retrieve", silent_retrieve)
    with pytest.raises(TrackerDatabaseUnavailable, match="not answering"):
        await store.retrieve("conv-silent")
    assert calls["retrieve"] == 1  # nothing happened yet: "try again" now, not after 20 s

    real_save = RedactingSQLTrackerStore.save

    async def silent_twice(self, tracker):
        calls["save"] += 1
        if calls["save"] <= 2:
            raise TrackerDatabaseSilent("no answer within 5 s")
        await real_save(self, tracker)

    monkeypatch.setattr(RedactingSQLTrackerStore, "save", silent_twice)
    tracker = _tracker("conv-silent", [fake.sentence()])
    await store.save(tracker)  # the replies are out: the turn is stored once the path is back
    assert calls["save"] == 3
    stored = await store.retrieve_full_tracker("conv-silent")
    assert stored is not None and len(stored.events) == len(tracker.events)


async def test_a_save_given_up_on_never_commits_late(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from cartguard.stores import tracker_store

    slow = RedactingSQLTrackerStore(
        domain=DOMAIN,
        host=f"sqlite:///{tmp_path / 'slow.db'}",
        sensitive_slots=[],
        query_timeout_seconds="0.2",
    )
    real = tracker_store.redacted_events

    def stalls_inside_the_transaction(*args, **kwargs):
        time.sleep(0.5)  # the database answers, but too late for the caller
        return real(*args, **kwargs)

    monkeypatch.setattr(tracker_store, "redacted_events", stalls_inside_the_transaction)
    with pytest.raises(TrackerDatabaseSilent):
        await slow.save(_tracker("conv-late", ["hello"]))
    await asyncio.sleep(0.8)  # the worker thread has finished by now
    monkeypatch.setattr(tracker_store, "redacted_events", real)
    assert await slow.retrieve_full_tracker("conv-late") is None  # rolled back, not stored


def test_a_bad_grace_value_is_refused_with_its_name(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(ValueError, match="outage_grace_seconds"):
        ResilientRedactingSQLTrackerStore(
            domain=DOMAIN, host=f"sqlite:///{tmp_path / 't.db'}", outage_grace_seconds="soon"
        )


# ----------------------------------------------------------------------------- checks


def _stored(texts: list[str]) -> list[dict]:
    events = [{"event": "action", "name": "action_listen", "timestamp": 0.0}]
    stamp = 1.0
    for text in texts:
        events += [
            {"event": "user", "text": text, "timestamp": stamp},
            {"event": "action", "name": "utter_greet", "timestamp": stamp + 0.1},
            {"event": "bot", "text": "Hello!", "timestamp": stamp + 0.2},
            {"event": "action", "name": "action_listen", "timestamp": stamp + 0.3},
        ]
        stamp += 1
    return events


def _problems(events: list[dict], sent: list[str]) -> list[str]:
    from bench.checks import StoredConversation

    return problems_in(StoredConversation("c", events), sent)


def test_checks_pass_an_intact_conversation_and_catch_each_kind_of_damage(data_dir: Path) -> None:
    sent = ["hello there", "where is my parcel", "thanks a lot"]
    assert _problems(_stored(sent), sent) == []
    assert "lost" in _problems(_stored(sent[:2]), sent)[0]
    assert "duplicated" in _problems(_stored([*sent, sent[1]]), sent)[0]
    assert "reordered" in _problems(_stored([sent[1], sent[0], sent[2]]), sent)[0]
    interleaved = _stored(sent)
    # a second user message stored before the first turn ended: the turns overlapped
    second_user = next(i for i, e in enumerate(interleaved) if e.get("text") == sent[1])
    interleaved.insert(2, interleaved.pop(second_user))
    assert any("action_listen" in p or "no bot reply" in p for p in _problems(interleaved, sent))


# ----------------------------------------------------------------------------- configuration


def test_rasa_expands_only_unquoted_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Rasa 3.6 trap endpoints.scale.yml is written around (and the launcher repairs)."""
    from rasa.utils.endpoints import read_endpoint_config

    monkeypatch.setenv("CG_SCALE_PROBE", "amqp-host")
    path = tmp_path / "endpoints.yml"
    path.write_text('broker:\n  url: ${CG_SCALE_PROBE}\n  quoted: "${CG_SCALE_PROBE}"\n')
    config = read_endpoint_config(str(path), "broker")
    assert config.url == "amqp-host"
    assert config.kwargs["quoted"] == "${CG_SCALE_PROBE}"  # stays literal
    path.write_text(_unquote_env(path.read_text()))
    assert read_endpoint_config(str(path), "broker").kwargs["quoted"] == "amqp-host"


def test_endpoints_scale_yml_expands_completely_and_names_importable_stores(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib

    from rasa.utils.endpoints import read_endpoint_config

    stack = Stack(StackConfig(replicas=2, data_dir=tmp_path, services=Services()))
    env = stack.base_env()
    env["CARTGUARD_ACTION_URL"] = "http://127.0.0.1:1/webhook"
    env["CARTGUARD_ACTION_TOKEN"] = fake.sha256()
    for name, value in env.items():
        if name.startswith("CARTGUARD_"):
            monkeypatch.setenv(name, value)
    for section in ("action_endpoint", "tracker_store", "lock_store", "event_broker"):
        config = read_endpoint_config(str(REPO / "endpoints.scale.yml"), section)
        values = [config.url, *map(str, config.kwargs.values()), *config.headers.values()]
        assert not [v for v in values if "${" in str(v)], section
        if config.type and "." in config.type:
            module, _, name = config.type.rpartition(".")
            assert getattr(importlib.import_module(module), name)
    lock = read_endpoint_config(str(REPO / "endpoints.scale.yml"), "lock_store")
    assert lock.type == "cartguard.stores.lock_store.AtomicRedisLockStore"


def test_several_replicas_need_postgresql() -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        StackConfig(replicas=2, database="sqlite")


def test_a_stack_does_not_inherit_the_callers_cartguard_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CARTGUARD_DATABASE_URL", "sqlite:////nowhere/shop.db")
    monkeypatch.setenv("CARTGUARD_MESSENGER_APP_SECRET", fake.sha256())
    env = Stack(StackConfig(replicas=1, database="sqlite", data_dir=tmp_path)).base_env()
    assert env["CARTGUARD_DATABASE_URL"] == f"sqlite:///{tmp_path.resolve() / 'shop.db'}"
    assert "CARTGUARD_MESSENGER_APP_SECRET" not in env
    assert os.environ["CARTGUARD_DATABASE_URL"] == "sqlite:////nowhere/shop.db"


@pytest.mark.parametrize(
    ("flavour", "database", "broker"),
    [
        ("stock", "sqlite", True),
        ("stock", "postgresql", True),
        ("cartguard", "sqlite", True),
        ("cartguard", "postgresql", False),
    ],
)
def test_every_generated_endpoints_file_parses_and_expands_completely(
    flavour: str, database: str, broker: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasa.utils.endpoints import read_endpoint_config

    stack = Stack(
        StackConfig(
            replicas=1,
            flavour=flavour,
            database=database,
            broker=broker,
            data_dir=tmp_path,
            services=Services(),
        )
    )
    if flavour == "stock":
        stack._write_stock_endpoints()
    env = {**stack.base_env(), "CARTGUARD_ACTION_URL": "http://127.0.0.1:1/webhook"}
    env["CARTGUARD_ACTION_TOKEN"] = fake.sha256()
    for name, value in env.items():
        if name.startswith("CARTGUARD_"):
            monkeypatch.setenv(name, value)
    path = stack.endpoints_file()
    sections = ["action_endpoint", "tracker_store", "lock_store"]
    if database == "postgresql" and broker:
        sections.append("event_broker")
    for section in sections:
        config = read_endpoint_config(str(path), section)
        assert config is not None, (path.name, section)
        values = [config.url, *map(str, config.kwargs.values()), *config.headers.values()]
        assert not [v for v in values if "${" in str(v)], (path.name, section)
    if database == "postgresql" and not broker:
        assert read_endpoint_config(str(path), "event_broker") is None


# ----------------------------------------------------------------------------- broker outbox


class FlakyExchange:
    """Stands in for RabbitMQ: refuses the first ``failures`` publishes, then confirms."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.confirmed: list[dict] = []

    async def publish(self, message, routing_key: str) -> None:
        import json

        if self.failures:
            self.failures -= 1
            raise ConnectionError("channel closed")
        self.confirmed.append(json.loads(message.body))


async def test_the_broker_outbox_keeps_events_while_rabbitmq_refuses_and_delivers_them_in_order(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    from cartguard.stores.broker import RedactingPikaEventBroker

    broker = RedactingPikaEventBroker(
        "localhost", "guest", "guest", queues=["q"], sensitive_slots=[], outbox_retry_seconds=0.01
    )
    exchange = FlakyExchange(failures=25)
    broker._exchange = exchange
    with caplog.at_level(logging.WARNING, logger="cartguard.stores.broker"):
        for index in range(6):
            broker.publish({"event": "bot", "sender_id": "conv-outbox", "text": f"reply {index}"})
        await asyncio.sleep(0.05)
        assert broker.outbox_size > 0  # held, not dropped, while RabbitMQ refuses
        for _ in range(200):
            if broker.outbox_size == 0:
                break
            await asyncio.sleep(0.01)
    assert broker.outbox_size == 0
    assert [e["text"] for e in exchange.confirmed] == [f"reply {i}" for i in range(6)]
    assert "keeping them in the outbox" in caplog.text
    assert "accepting events again" in caplog.text


# ----------------------------------------------------------------------------- balancer


def test_the_haproxy_template_renders_to_a_configuration_haproxy_accepts(tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(
        balancer.render([("127.0.0.1", 5101), ("127.0.0.1", 5102)], 8001, 8002, tmp_path / "s")
    )
    balancer.check_config(path)  # raises with HAProxy's words when invalid
    text = path.read_text()
    assert "cookie CARTGUARD_RASA insert" in text and "option forwardfor" in text
    assert not re.search(r"@[A-Z_]+@", text)  # every placeholder filled in
    path.write_text(text.replace("balance roundrobin", "balance nonsense", 1))
    with pytest.raises(RuntimeError, match="haproxy rejected"):
        balancer.check_config(path)


def test_the_request_log_names_the_replica_that_served_each_request(tmp_path: Path) -> None:
    log = tmp_path / "haproxy.log"
    log.write_text(
        "127.0.0.1:5 [01/Dec/2026:23:21:37.117] internal rasa_api/rasa2 0/0/0/1/1 200 115 - - "
        '---- 1/1/0/0/0 0/0 "POST /conversations/abc/trigger_intent?output_channel=latest '
        'HTTP/1.1"\n'
        "127.0.0.1:6 [01/Dec/2026:23:21:38.000] public rasa_public/rasa1 0/0/0/2/2 200 90 - - "
        '--VN 1/1/0/0/0 0/0 "GET /socket.io/?EIO=4&transport=polling HTTP/1.1"\n'
        "a line that is not a request\n"
    )
    routes = balancer.routed(log)
    assert [(r.frontend, r.server, r.method) for r in routes] == [
        ("internal", "rasa2", "POST"),
        ("public", "rasa1", "GET"),
    ]
    assert routes[0].path.startswith("/conversations/abc/trigger_intent")


def test_each_simulated_shopper_gets_its_own_loopback_address() -> None:
    addresses = [shopper_address(i) for i in range(70_000)]
    assert len(set(addresses)) == len(addresses)
    assert addresses[0] == "127.0.0.2"
    assert all(a.startswith("127.") and not a.endswith(".0.0.1") for a in addresses)


# --- the widget's message ids (cartguard.channels.inflight.client_message_id) ---------------

_ID_ALPHABET = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@given(st.text(_ID_ALPHABET, min_size=8, max_size=64))
def test_a_well_formed_message_id_is_taken_as_given(value: str) -> None:
    assert client_message_id({"message_id": value}) == value


@given(
    st.one_of(
        st.text(_ID_ALPHABET, max_size=7),  # too short
        st.text(_ID_ALPHABET, min_size=65, max_size=400),  # too long (a flood)
        st.text(min_size=8, max_size=64).filter(lambda v: not re.fullmatch(r"[\w-]+", v, re.A)),
        st.integers(),
        st.none(),
        st.lists(st.text(_ID_ALPHABET, min_size=8, max_size=8), max_size=2),
    )
)
def test_a_malformed_message_id_is_ignored(value: object) -> None:
    assert client_message_id({"message_id": value}) is None
