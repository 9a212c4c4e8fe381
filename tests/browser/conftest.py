"""Browser fixtures: Debian's Chromium through Playwright, and the services behind the page.

Two back ends:

* ``fake_stack``: the real web service in-process, with a small socket.io + HTTP stand-in for
  Rasa (``fakechat.py``), fast enough for every test run;
* ``stack``: the whole assistant - Rasa with the trained model from ``models/``, the action
  server and the web service - as subprocesses on free ports with a fresh data directory. It
  skips, saying why, when no trained model exists. Loading the model takes about a minute.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

PROJECT = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT / "docs" / "screenshots"
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(PROJECT / "tests" / "webapp"))

from webharness import ServerThread, free_port  # noqa: E402

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright (Playwright's own browser download is not used)."""
    executable = shutil.which("chromium")
    if not executable:
        pytest.skip("Chromium is not installed: run `apt-get install -y chromium` (make system)")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@dataclass
class Stack:
    web_url: str
    logins: dict[int, tuple[str, str]]
    data_dir: Path
    chat: object | None = None  # the fake chat back end, when there is one


# --- fast: real web service, fake Rasa -------------------------------------------------------


@pytest.fixture(scope="session")
def fake_stack(data_dir: Path) -> Iterator[Stack]:
    from fakechat import FakeChat
    from sqlalchemy import select

    from cartguard.keys import load_keys
    from cartguard.settings import get_settings
    from cartguard.shop.db import session_scope
    from cartguard.shop.models import Customer
    from cartguard.webapp.app import create_app
    from cartguard.webapp.auth import create_demo_logins

    with session_scope() as session:
        customers = session.execute(select(Customer).order_by(Customer.id)).scalars().all()
        created = create_demo_logins(session, [c.id for c in customers])
        logins = {c.id: (c.email.lower(), created[c.email.lower()]) for c in customers}
    chat = FakeChat(jwt_secret=load_keys().get("rasa_jwt_secret"), port=free_port()).start()
    settings = dataclasses.replace(get_settings(), rasa_url=chat.url, outbox_retry_seconds=1)
    server = ServerThread(create_app(settings)).start()
    chat.web_base_url = server.base_url
    yield Stack(web_url=server.base_url, logins=logins, data_dir=data_dir, chat=chat)
    server.stop()
    chat.stop()


# --- slow: the whole assistant ----------------------------------------------------------------


def _trained_model() -> Path | None:
    models = sorted((PROJECT / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return models[-1] if models else None


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
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Rasa + action server + web service on free ports, with their own data directory."""
    model = _trained_model()
    if model is None:
        pytest.skip("no trained model in models/: run `make train` to enable the full-stack test")
    data = tmp_path_factory.mktemp("stack-var")
    logs = data / "logs"
    logs.mkdir()
    ports = {"RASA_PORT": free_port(), "ACTION_PORT": free_port(), "WEB_PORT": free_port()}
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
    bin_dir = Path(sys.executable).parent
    cli = str(bin_dir / "cartguard")

    def run(*args: str) -> str:
        return subprocess.run(
            [cli, *args], cwd=PROJECT, env=env, check=True, capture_output=True, text=True
        ).stdout

    run("init-keys")
    run("seed", "--customers", "3")
    for line in run("shell-env").splitlines():  # `export NAME=value` lines for Rasa's YAML
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = shlex.split(value)[0] if value else ""
    logins_file = json.loads((data / "demo-logins.json").read_text())

    python = sys.executable
    rasa_main = [python, "-m", "cartguard.rasa_main"]
    if not (PROJECT / "cartguard" / "rasa_main.py").exists():
        rasa_main = [str(bin_dir / "rasa")]
    action = [python, "-m", "rasa_sdk", "--actions", "actions", "--port", str(ports["ACTION_PORT"])]
    if (PROJECT / "cartguard" / "action_server.py").exists():
        action = [python, "-m", "cartguard.action_server", "--port", str(ports["ACTION_PORT"])]
    commands = {
        "actions": action,
        "web": [python, "-m", "cartguard.webapp"],
        "rasa": [
            *rasa_main,
            "run",
            "--model",
            str(model),
            "--endpoints",
            "endpoints.yml",
            "--credentials",
            "credentials.yml",
            "--port",
            str(ports["RASA_PORT"]),
            "--enable-api",
            "--jwt-secret",
            env["CARTGUARD_RASA_JWT_SECRET"],
            "--jwt-method",
            "HS256",
            "--cors",
            web_url,
        ],
    }
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands.items():
            with open(logs / f"{name}.log", "w") as log:
                procs[name] = subprocess.Popen(
                    command, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
        _wait_http(f"{web_url}/healthz", 60, procs, logs)
        _wait_http(f"{rasa_url}/", 300, procs, logs)
        with closing(sqlite3.connect(data / "shop.db")) as db:
            rows = db.execute("SELECT id, email FROM customers ORDER BY id").fetchall()
        logins = {
            cid: (email.lower(), logins_file[email.lower()])
            for cid, email in rows
            if email.lower() in logins_file
        }
        yield Stack(web_url=web_url, logins=logins, data_dir=data)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def stack_env(stack: Stack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTGUARD_")}
    env["CARTGUARD_DATA_DIR"] = str(stack.data_dir)
    return env
