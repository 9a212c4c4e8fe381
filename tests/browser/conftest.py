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
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
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


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium driven by Playwright (Playwright's own browser download is not used).

    Module-scoped on purpose: Playwright's sync API keeps an event loop running in the main
    thread while it is started, which would break every later test that calls asyncio.run().
    """
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
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where a test may save a picture of what it saw (for debugging a failure).

    Never docs/screenshots/: tests must not write tracked files. The pictures in the docs come
    from the real stack through `make screenshots` (scripts/screenshots.py).
    """
    return tmp_path_factory.mktemp("screenshots")


@dataclass
class Stack:
    web_url: str
    logins: dict[int, tuple[str, str]]
    data_dir: Path
    chat: object | None = None  # the fake chat back end, when there is one


# --- fast: real web service, fake Rasa -------------------------------------------------------


@pytest.fixture(scope="session")
def fake_stack(data_dir: Path, payment_provider) -> Iterator[Stack]:
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
    settings = dataclasses.replace(
        get_settings(),
        rasa_url=chat.url,
        outbox_retry_seconds=1,
        payment_provider_url=payment_provider.url,
    )
    server = ServerThread(create_app(settings)).start()
    chat.web_base_url = server.base_url
    yield Stack(web_url=server.base_url, logins=logins, data_dir=data_dir, chat=chat)
    server.stop()
    chat.stop()
