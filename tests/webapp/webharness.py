"""Test helpers for the web service: a real server on a free port, a fake Rasa, a browser-ish client.

The web service runs in a background thread on its own event loop (Sanic's ``create_server``),
so tests talk to it over real HTTP like a browser, yet share the process with the test: the
database, the data directory and time_machine apply to both.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """Runs a Sanic app on 127.0.0.1:<free port> in a daemon thread.

    Sanic's test mode is switched on because it rewrites its own request-handling methods at
    the first start ("touch-up"), which breaks the second app started in the same process.
    """

    def __init__(self, app: Any) -> None:
        from sanic import Sanic

        Sanic.test_mode = True
        self.app = app
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            server = self.loop.run_until_complete(
                self.app.create_server(sock=self.sock, return_asyncio_server=True, access_log=True)
            )
            self.loop.run_until_complete(server.startup())
            self.loop.run_until_complete(server.before_start())
            self.loop.run_until_complete(server.after_start())
            self.server = server
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("web service did not start within 30 s")
        if self._error is not None:
            raise RuntimeError(f"web service failed to start: {self._error!r}")
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            await self.server.before_stop()
            self.server.close()
            await self.server.after_stop()

        future = asyncio.run_coroutine_threadsafe(shutdown(), self.loop)
        try:
            future.result(10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)


@dataclass
class FakeRasa:
    """Stands in for Rasa's HTTP API: checks the JWT like Rasa does and records trigger_intent."""

    jwt_secret: str
    port: int = field(default_factory=free_port)
    available: bool = True
    calls: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeRasa:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not fake.available:
                    self._answer(503, {"status": "failure", "message": "down for the test"})
                    return
                auth = self.headers.get("Authorization", "")
                try:
                    claims = jwt.decode(
                        auth.removeprefix("Bearer "), fake.jwt_secret, algorithms=["HS256"]
                    )
                    assert claims["user"]["role"] == "admin"
                except Exception as exc:
                    fake.rejected.append(f"{type(exc).__name__}: {self.path}")
                    self._answer(401, {"status": "failure", "reason": "NotAuthenticated"})
                    return
                match = re.fullmatch(
                    r"/conversations/([^/]+)/trigger_intent\?output_channel=latest", self.path
                )
                if not match:
                    self._answer(404, {"status": "failure"})
                    return
                fake.calls.append(
                    {
                        "conversation_id": match.group(1),
                        "auth_in_url": "token=" in self.path,
                        **body,
                    }
                )
                self._answer(200, {"tracker": {"sender_id": match.group(1)}, "messages": []})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def calls_for(self, conversation_id: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["conversation_id"] == conversation_id]


_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


class Browser:
    """A cookie-keeping HTTP client that submits forms with the page's CSRF token."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.base_url + path, allow_redirects=False, timeout=10, **kwargs)

    def post(self, path: str, data: dict[str, str], **kwargs: Any) -> requests.Response:
        return self.http.post(
            self.base_url + path, data=data, allow_redirects=False, timeout=10, **kwargs
        )

    def csrf(self, path: str = "/login") -> str:
        page = self.get(path)
        match = _CSRF.search(page.text)
        assert match, f"no CSRF token on {path} (HTTP {page.status_code})"
        return match.group(1)

    def submit(self, path: str, data: dict[str, str]) -> requests.Response:
        """Open the form page like a shopper, then post it with its CSRF token."""
        token = self.csrf(path)
        return self.post(path, {**data, "csrf_token": token})

    def login(self, email: str, password: str) -> requests.Response:
        response = self.submit("/login", {"email": email, "password": password})
        assert response.status_code == 303, response.text[:500]
        return response


def new_conversation_id() -> str:
    import secrets

    return "conv-" + secrets.token_hex(8)


def issue(
    purpose: str,
    customer_id: int | None = 1,
    *,
    payload: dict[str, Any] | None = None,
    channel: str = "socketio",
    conversation_id: str | None = None,
) -> tuple[str, str]:
    """Issue a secure-form link like the action server would; returns (token, conversation id)."""
    from cartguard.links import issue_link
    from cartguard.shop.db import session_scope

    conversation_id = conversation_id or new_conversation_id()
    with session_scope() as session:
        link = issue_link(
            session,
            conversation_id=conversation_id,
            customer_id=customer_id,
            purpose=purpose,
            channel=channel,
            payload=payload,
        )
    return link.token, conversation_id


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.2) -> Any:
    """Poll until ``predicate()`` is truthy (no assertion about how long it took)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def set_cookies(response: requests.Response) -> dict[str, str]:
    """Cookie name -> the whole Set-Cookie header line, for checking the flags."""
    lines = response.raw.headers.getlist("Set-Cookie") if response.raw is not None else []
    return {line.split("=", 1)[0]: line for line in lines}


def future_expiry(days: int = 400) -> tuple[str, str]:
    """An expiry ``days`` ahead: (as typed ``MM/YY``, as stored ``MM/YYYY``)."""
    from datetime import timedelta

    from cartguard.shop.models._common import utcnow

    moment = utcnow() + timedelta(days=days)
    return f"{moment.month:02d}/{moment.year % 100:02d}", f"{moment.month:02d}/{moment.year}"
