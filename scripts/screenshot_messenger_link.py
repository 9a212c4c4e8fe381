"""Screenshots of the Messenger linking page for docs/channels.md (not taken by any test).

Starts the web service (``python -m cartguard.webapp``) on a free loopback port with a data
directory of its own (dev keys, a seeded demo shop) and a local fake Graph API
(:mod:`devtools.fake_graph`), issues a linking link as the assistant would for a Messenger user,
and opens it in Debian's Chromium the way Messenger's log-in button does:

* ``docs/screenshots/30-messenger-linking-page.png``: the page its own Messenger user sees;
* ``docs/screenshots/31-messenger-link-other-user.png``: the same link opened by someone else.

Run: ``.venv/bin/python scripts/screenshot_messenger_link.py`` (about ten seconds).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from devtools.fake_graph import FakeGraph

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
OUT = PROJECT / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    from devtools.fake_graph import FakeGraph

    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("Chromium is not installed (apt-get install -y chromium)")
    data = Path(tempfile.mkdtemp(prefix="cartguard-shots-"))
    port = _free_port()
    web_url = f"http://127.0.0.1:{port}"
    with FakeGraph() as graph:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARTGUARD_")}
        env.update(
            CARTGUARD_DATA_DIR=str(data),
            CARTGUARD_PUBLIC_WEB_URL=web_url,
            CARTGUARD_GRAPH_API_URL=graph.url,
            WEB_PORT=str(port),
        )
        cli = [str(Path(sys.executable).parent / "cartguard")]
        for args in (["init-keys"], ["seed", "--customers", "2"]):
            subprocess.run(cli + args, env=env, cwd=PROJECT, check=True, capture_output=True)
        os.environ.update(env)  # this process issues the link in the same shop database
        web = subprocess.Popen(
            [sys.executable, "-m", "cartguard.webapp"],
            env=env,
            cwd=PROJECT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(f"{web_url}/healthz")
            _shoot(chromium, graph, web_url)
        finally:
            web.terminate()
            web.wait(20)
    shutil.rmtree(data, ignore_errors=True)


def _wait(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    sys.exit(f"the web service did not answer at {url}")


def _shoot(chromium: str, graph: FakeGraph, web_url: str) -> None:
    from playwright.sync_api import sync_playwright

    from cartguard.account_links import start_linking
    from cartguard.shop.db import session_scope

    psid, other = "7300000000004242", "7300000000009999"
    with session_scope() as session:
        url = start_linking(session, psid)
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 760, "height": 900}).new_page()
        page.goto(f"{url}?account_linking_token={graph.tap(psid)}")
        page.wait_for_selector("#f-email")
        page.screenshot(path=str(OUT / "30-messenger-linking-page.png"), full_page=True)
        page.goto(f"{url}?account_linking_token={graph.tap(other)}")
        page.wait_for_selector("text=another Messenger conversation")
        page.screenshot(path=str(OUT / "31-messenger-link-other-user.png"), full_page=True)
        browser.close()
    print(f"wrote {OUT / '30-messenger-linking-page.png'} and 31-messenger-link-other-user.png")


if __name__ == "__main__":
    main()
