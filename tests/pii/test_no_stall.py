"""No stall: while 10 KB digit floods are being handled, another client's small request
completes first. Ordering checks, not timing thresholds (latencies are in ``make bench``).

Issue 16 measured the attack: one unauthenticated POST with a long path of digit groups made
the web service redact its log line on the event loop for 12 s, and ``/healthz`` waited behind
it; the chat edge redacted every message on one worker thread, so a few flooding clients kept
everyone else waiting.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from cartguard.pii.tokens import CARD_MASK_RE

FLOOD = ("4242 " * 2100)[:10_000]  # ten kilobytes of card-like digit groups


async def test_chat_edge_answers_a_short_message_while_floods_are_redacted() -> None:
    from cartguard.channels import edge

    finished: list[str] = []

    async def send(name: str, text: str) -> None:
        await edge.protect(text, customer_id=None, conversation_id=None)
        finished.append(name)

    floods = [asyncio.create_task(send(f"flood-{n}", FLOOD)) for n in range(4)]
    await asyncio.sleep(0.01)  # the floods are on the edge's worker threads now
    assert not all(task.done() for task in floods), "floods finished before the check began"
    await send("shopper", "where is my order CG-482913?")
    await asyncio.gather(*floods)
    assert finished.index("shopper") < finished.index("flood-3"), finished
    assert set(finished) == {"shopper", *(f"flood-{n}" for n in range(4))}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def web_service(data_dir: Path):
    """``python -m cartguard.webapp`` as in production: its own process, log redaction on."""
    from cartguard.settings import get_settings

    port = _free_port()
    env = {**os.environ, "WEB_PORT": str(port), "CARTGUARD_HOST": "127.0.0.1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "cartguard.webapp"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"web service exited with {process.returncode}")
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise RuntimeError("web service did not start")
        yield url, get_settings().log_file
    finally:
        process.terminate()
        process.wait(30)


def test_web_service_answers_healthz_while_floods_are_being_logged(web_service) -> None:
    url, log_path = web_service
    start = log_path.stat().st_size if log_path.exists() else 0
    # 10 KB per request: a path of digit groups (logged, so redacted) and a body of digits;
    # Sanic itself refuses request lines much longer than the path used here
    path = "/" + FLOOD[:3_900].replace(" ", "%20")
    body = FLOOD[:6_000]
    order: list[str] = []
    lock = threading.Lock()

    def flood(n: int) -> None:
        response = requests.post(url + path, data=body, timeout=600)
        assert response.status_code == 403  # no CSRF token: refused, and the path logged
        with lock:
            order.append(f"flood-{n}")

    def refusals_logged() -> int:
        if not log_path.exists():
            return 0
        with log_path.open() as handle:
            handle.seek(start)
            return handle.read().count("refused POST")

    with ThreadPoolExecutor(max_workers=8) as pool:
        floods = [pool.submit(flood, n) for n in range(8)]
        # wait until the service is handling the floods: the first refusal is in the log
        deadline = time.monotonic() + 120
        while refusals_logged() == 0 and time.monotonic() < deadline:
            time.sleep(0.002)
        assert refusals_logged() < 8, "all floods were handled before the check began"
        assert requests.get(url + "/healthz", timeout=600).status_code == 200
        with lock:
            order.append("healthz")
        for future in floods:
            future.result()
    assert order.index("healthz") < len(order) - 1, order
    logged = CARD_MASK_RE.sub("<mask>", log_path.read_text()[start:])
    assert "refused POST" in logged
    # no run of 12 or more digits is left in clear, however the line was cut
    assert not re.search(r"\d(?:(?:\s|%20)?\d){11}", logged), logged[-2000:]
