"""Redacting brokers, the log filter, and strict start-up (no silent in-memory fallback)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from faker import Faker
from rasa.core.brokers.pika import PikaEventBroker

from cartguard.stores import log_redaction
from cartguard.stores.broker import RedactingPikaEventBroker, RedactingSQLEventBroker

fake = Faker()
REPO = Path(__file__).resolve().parents[2]
CARD = "5555 5555 5555 4444"


def _user_event(email: str) -> dict:
    return {
        "sender_id": "conv-1",
        "event": "user",
        "timestamp": 1.0,
        "text": f"card {CARD}, mail {email}",
        "parse_data": {"text": f"mail {email}", "intent": {"name": "greet"}, "entities": []},
        "metadata": {"auth_token": "eyJhbGciOi.fake.token", "locale": "en"},
    }


def test_sql_broker_stores_only_redacted_events(tmp_path: Path, data_dir: Path) -> None:
    email = fake.email()
    broker = RedactingSQLEventBroker(db=str(tmp_path / "events.db"))
    broker.publish(_user_event(email))
    broker.publish({"sender_id": "conv-1", "event": "slot", "name": "otp_code", "value": "1 2"})
    with broker.engine.connect() as conn:
        rows = [json.loads(r[0]) for r in conn.execute(sa.text("SELECT data FROM events"))]
    raw = json.dumps(rows)
    assert email not in raw and CARD not in raw and "auth_token" not in raw
    assert rows[0]["sender_id"] == "conv-1" and rows[0]["metadata"] == {"locale": "en"}
    assert rows[1]["value"] == "<REDACTED>"


async def test_pika_broker_redacts_before_publishing(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    sent: list[dict] = []
    monkeypatch.setattr(
        PikaEventBroker, "publish", lambda self, event, headers=None: sent.append(event)
    )
    broker = RedactingPikaEventBroker("localhost", "guest", "guest", queues=["q"])
    email = fake.email()
    broker.publish(_user_event(email))
    assert len(sent) == 1
    assert email not in json.dumps(sent) and "auth_token" not in json.dumps(sent)


@pytest.fixture()
def captured_root() -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s - %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    factory = logging.getLogRecordFactory()
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        logging.setLogRecordFactory(factory)
        log_redaction._installed_factory = False


def test_rasa_debug_line_with_a_card_is_redacted_by_the_root_handler_filter(
    captured_root: io.StringIO,
) -> None:
    log_redaction.install_log_redaction(record_factory=False)
    email = fake.email()
    logging.getLogger("rasa.core.processor").debug(
        "Received user message '%s' with intent '%s' and entities '[]'",
        f"pay with {CARD} and mail {email}",
        "{'name': 'greet'}",
    )
    out = captured_root.getvalue()
    assert "Received user message" in out and "555555******4444" in out
    assert CARD not in out and email not in out


def test_handlers_added_later_and_tracebacks_are_covered(captured_root: io.StringIO) -> None:
    log_redaction.install_log_redaction()
    late = io.StringIO()
    logger = logging.getLogger("sanic.error.test")
    logger.propagate = False
    logger.addHandler(logging.StreamHandler(late))
    try:
        raise ValueError(f"bad card {CARD}")
    except ValueError:
        logger.exception("failed for %s", "ip 203.0.113.7")
    out = late.getvalue()
    assert "ValueError" in out and CARD not in out and "203.0.113.7" not in out


def test_strict_factory_raises_where_rasa_would_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    import rasa.core.agent as agent_module
    import rasa.core.tracker_store as store_module
    from rasa.utils.endpoints import EndpointConfig

    from cartguard.stores.strict import StoreConfigurationError, make_rasa_strict

    bad = EndpointConfig(type="cartguard.stores.no_such_module.Store")
    for name in ("_load_from_module_name_in_endpoint_config",):
        monkeypatch.setattr(store_module, name, getattr(store_module, name))
    monkeypatch.setattr(
        agent_module.Agent,
        "_create_tracker_store",
        agent_module.Agent.__dict__["_create_tracker_store"],
    )
    monkeypatch.setattr(store_module, "_cartguard_strict", False, raising=False)
    import rasa.core.brokers.broker as broker_module

    monkeypatch.setattr(
        broker_module,
        "_load_from_module_name_in_endpoint_config",
        broker_module._load_from_module_name_in_endpoint_config,
    )

    with pytest.warns(UserWarning, match="InMemoryTrackerStore"):
        fallback = store_module.TrackerStore.create(bad)
    assert isinstance(fallback, store_module.InMemoryTrackerStore)  # the trap, unpatched

    make_rasa_strict()
    with pytest.raises(StoreConfigurationError, match="no_such_module"):
        store_module.TrackerStore.create(bad)


def test_rasa_main_refuses_to_start_with_a_missing_store_class(tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: cartguard.stores.typo.RedactingStore\n")
    result = subprocess.run(
        [sys.executable, "-m", "cartguard.rasa_main", "run", "--endpoints", str(endpoints)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "cannot be imported" in result.stderr and "in-memory" in result.stderr


@pytest.mark.slow
def test_rasa_main_stops_when_the_store_cannot_be_constructed(tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        "tracker_store:\n"
        "  type: cartguard.stores.tracker_store.RedactingSQLTrackerStore\n"
        "  url: nosuchdialect://nowhere/db\n"
        "models:\n  url: http://127.0.0.1:9/model.tar.gz\n  wait_time_between_pulls: null\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cartguard.rasa_main",
            "run",
            "--port",
            "0",
            "--endpoints",
            str(endpoints),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    assert "instead of falling back" in result.stderr
