"""Shared fixtures: an isolated data directory, dev keys and a seeded shop for every test session.

Every test run gets its own ``CARTGUARD_DATA_DIR`` under pytest's temporary directory, so tests
never touch the developer's ``./var`` and can search that directory for leaked personal data.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run browser tests last: Playwright's sync API holds an event loop while it runs."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


#: tests that need something outside Python (Chromium, PostgreSQL, Redis, RabbitMQ)
CI_REQUIRED_MARKERS = ("browser", "services")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """With ``CI=true``, a skipped browser or services test is a failure, not a quiet skip.

    On a developer machine a missing Chromium or PostgreSQL may skip those tests (``-rs`` lists
    them with the reason); in CI the same skip would hide that the checks never ran.
    """
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and not hasattr(report, "wasxfail")
        and os.environ.get("CI", "").strip().lower() == "true"
        and any(item.get_closest_marker(name) for name in CI_REQUIRED_MARKERS)
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where browser and services tests must run: {reason}"


def _isolate_environment(data_dir: Path) -> None:
    os.environ["CARTGUARD_DATA_DIR"] = str(data_dir)
    for name in list(os.environ):
        if name.startswith("CARTGUARD_") and name != "CARTGUARD_DATA_DIR":
            del os.environ[name]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh data directory with dev keys and a seeded shop database."""
    path = tmp_path_factory.mktemp("cartguard-var")
    _isolate_environment(path)
    from cartguard.keys import generate_dev_keys
    from cartguard.settings import get_settings
    from cartguard.shop.db import get_engine, session_scope
    from cartguard.shop.schema import create_schema
    from cartguard.shop.seed import seed_shop

    get_settings.cache_clear()
    get_engine.cache_clear()
    generate_dev_keys(get_settings().keys_file)
    create_schema()
    with session_scope() as session:
        seed_shop(session, customers=4, orders_per_customer=12)
    yield path


@pytest.fixture(scope="session")
def payment_provider(data_dir: Path):
    """The payment provider stand-in (``devtools.payment_provider``) on a free loopback port.

    Its store is ``<data dir>/payment-provider/``: the provider's side, which the card tests
    leave out when they prove the shop's side holds no card number.
    """
    from cartguard.keys import load_keys
    from devtools.payment_provider import STORE_DIR, serve_in_thread

    provider = serve_in_thread(data_dir / STORE_DIR, load_keys().get("payment_provider_key"))
    yield provider
    provider.stop()


@contextmanager
def own_shop_database(path: Path) -> Iterator[None]:
    """Point the process at a fresh SQLite shop database at ``path``, with every table.

    For test modules whose code commits rows and counts them across the whole database
    (channels, monitoring): they must neither see nor leave rows in the shared seeded shop.
    The previous database URL and the cached engine, settings and vault come back afterwards.
    """
    from cartguard.settings import get_settings
    from cartguard.shop.db import get_engine
    from cartguard.shop.schema import create_schema
    from cartguard.vault import get_vault

    def reset_caches() -> None:
        get_settings.cache_clear()
        get_engine.cache_clear()
        get_vault.cache_clear()

    previous = os.environ.get("CARTGUARD_DATABASE_URL")
    os.environ["CARTGUARD_DATABASE_URL"] = f"sqlite:///{path}"
    reset_caches()
    try:
        create_schema()
        yield
    finally:
        if previous is None:
            os.environ.pop("CARTGUARD_DATABASE_URL", None)
        else:
            os.environ["CARTGUARD_DATABASE_URL"] = previous
        reset_caches()


@pytest.fixture()
def db_session(data_dir: Path):
    """A session on the seeded shop; changes are rolled back after the test."""
    from cartguard.shop.db import get_engine

    engine = get_engine()
    connection = engine.connect()
    transaction = connection.begin()
    from sqlalchemy.orm import Session

    session = Session(bind=connection, future=True)
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


# --- dialogue fixtures (financial-demo style): build the tracker Rasa would send an action ---


def build_tracker(
    *,
    sender_id: str = "conv-test",
    intent: str = "greet",
    text: str | None = "hello",
    entities: list[dict] | None = None,
    slots: dict | None = None,
    metadata: dict | None = None,
    input_channel: str = "socketio",
    active_loop: str | None = None,
    prior_events: list[dict] | None = None,
):
    """A rasa_sdk ``Tracker`` whose latest user message carries ``metadata`` (the login token)."""
    from rasa_sdk import Tracker

    parse_data = {
        "intent": {"name": intent, "confidence": 0.99},
        "entities": entities or [],
        "text": text,
    }
    user_event = {
        "event": "user",
        "text": text,
        "parse_data": parse_data,
        "input_channel": input_channel,
        "metadata": metadata or {},
    }
    return Tracker(
        sender_id=sender_id,
        slots=dict(slots or {}),
        latest_message=parse_data,
        events=[*(prior_events or []), user_event],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


@pytest.fixture()
def tracker_factory(data_dir: Path):
    return build_tracker


# --- the whole assistant as subprocesses: Rasa (trained model), action server, web service ---

PROJECT = Path(__file__).resolve().parents[1]


@dataclass
class FullStack:
    web_url: str
    rasa_url: str
    logins: dict[int, tuple[str, str]]  # customer id -> (e-mail, password)
    data_dir: Path
    env: dict[str, str]
    #: the local Graph API stand-in Messenger replies go to (devtools.fake_graph.FakeGraph)
    graph: Any = None
    #: customer -> the newest 30 s step a one-time code was handed out for (see unused_code)
    code_steps: dict[str, int] = field(default_factory=dict)

    def unused_code(self, customer: str) -> str:
        """A one-time code of a step no earlier test has had a code of, for this customer.

        Replay protection refuses a code of a step at or before the last one used, so a
        test that follows another one with the same customer within 30 s waits for the
        next step instead of failing on a code its predecessor already spent.
        """
        while time.time() // 30 <= self.code_steps.get(customer, -1):
            time.sleep(30 - time.time() % 30 + 0.2)
        return self.cli("totp-code", customer)

    def cli(self, *args: str) -> str:
        """Run the ``cartguard`` command against this stack's data directory."""
        out = subprocess.run(
            [str(Path(sys.executable).parent / "cartguard"), *args],
            cwd=PROJECT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if args[:1] == ("totp-code",) and len(args) > 1:  # the code's step, or a later one
            self.code_steps[args[1]] = int(time.time() // 30)
        return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, seconds: float, procs: dict[str, subprocess.Popen], logs: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                tail = (logs / f"{name}.log").read_text()[-3000:]
                raise RuntimeError(f"{name} exited early (code {proc.returncode}):\n{tail}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s; logs in {logs}")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullStack]:
    """Rasa + action server + web service on free ports with a fresh data directory.

    Started once per test run (loading the model takes about a minute) with the redacting SQL
    event broker switched on, so end-to-end tests can search the tracker, broker and logs.
    ``make test`` trains the model first; without one the tests using this fixture fail.
    """
    model = PROJECT / "models" / "cartguard.tar.gz"
    assert model.exists(), "no trained model: run `make train` first"
    data = tmp_path_factory.mktemp("stack-var")
    logs = data / "logs"
    logs.mkdir()
    ports = {
        "RASA_PORT": _free_port(),
        "ACTION_PORT": _free_port(),
        "WEB_PORT": _free_port(),
        "PAYMENT_PROVIDER_PORT": _free_port(),  # the web service's provider URL follows it
    }
    web_url = f"http://127.0.0.1:{ports['WEB_PORT']}"
    rasa_url = f"http://127.0.0.1:{ports['RASA_PORT']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTGUARD_")}
    env.update({name: str(port) for name, port in ports.items()})
    env.update(
        CARTGUARD_DATA_DIR=str(data),
        CARTGUARD_PUBLIC_WEB_URL=web_url,
        CARTGUARD_RASA_URL=rasa_url,
        CARTGUARD_ACTION_URL=f"http://127.0.0.1:{ports['ACTION_PORT']}/webhook",
    )
    from devtools.fake_graph import FakeGraph

    graph = FakeGraph().start()  # Messenger replies stay on this machine
    env["CARTGUARD_GRAPH_API_URL"] = graph.url
    full = FullStack(web_url, rasa_url, {}, data, env, graph)
    full.cli("init-keys")
    full.cli("seed", "--customers", "3")
    for line in full.cli("shell-env").splitlines():  # `export NAME=value` lines
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = shlex.split(value)[0] if value else ""
    endpoints = data / "endpoints.yml"
    endpoints.write_text(
        (PROJECT / "endpoints.yml").read_text()
        + "\nevent_broker:\n  type: cartguard.stores.broker.RedactingSQLEventBroker\n"
        + f"  dialect: sqlite\n  db: {data / 'events.db'}\n"
    )
    python = sys.executable
    commands = {
        "payment-provider": [python, "-m", "devtools.payment_provider"],
        "actions": [python, "-m", "cartguard.action_server", "--port", str(ports["ACTION_PORT"])],
        "web": [python, "-m", "cartguard.webapp"],
        "rasa": [
            python,
            "-m",
            "cartguard.rasa_main",
            "run",
            "--model",
            str(model),
            "--endpoints",
            str(endpoints),
            "--credentials",
            "credentials.yml",
            "--port",
            str(ports["RASA_PORT"]),
            "--enable-api",
            # cartguard.rasa_main adds the JWT secret (from the environment, never this command
            # line), --interface 127.0.0.1 and one --cors with every allowed origin
            "--debug",
            "--log-file",
            str(logs / "rasa-debug.log"),
        ],
    }
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands.items():
            with open(logs / f"{name}.log", "w") as log:
                procs[name] = subprocess.Popen(
                    command, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
        _wait_http(f"http://127.0.0.1:{ports['PAYMENT_PROVIDER_PORT']}/healthz", 60, procs, logs)
        _wait_http(f"{web_url}/healthz", 60, procs, logs)
        _wait_http(f"{rasa_url}/", 300, procs, logs)
        logins_file = json.loads((data / "demo-logins.json").read_text())
        with closing(sqlite3.connect(data / "shop.db")) as db:
            rows = db.execute("SELECT id, email FROM customers ORDER BY id").fetchall()
        full.logins.update(
            {
                cid: (email.lower(), logins_file[email.lower()])
                for cid, email in rows
                if email.lower() in logins_file
            }
        )
        yield full
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        graph.stop()


@pytest.fixture(scope="session")
def stack_env(stack: FullStack) -> dict[str, str]:
    return dict(stack.env)
