"""Test harness for the channel tests (imported by conftest and the test modules)."""

from __future__ import annotations

import asyncio
import re
import socket
import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import socketio
from aiohttp import web
from sanic import Sanic

Sanic.test_mode = True  # many short-lived apps with the same names in one process

TIMEOUT = 10.0


# --------------------------------------------------------------------------- edge redaction

_CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def stand_in_edge() -> types.ModuleType:
    """Used only while cartguard.channels.tokenize does not exist yet: masks Luhn-valid card numbers."""
    from dataclasses import dataclass

    module = types.ModuleType("cartguard.channels.tokenize")

    @dataclass(frozen=True)
    class EdgeResult:
        text: str
        labels: frozenset
        card_typed: bool
        secret_typed: bool

    def protect_incoming(text, *, customer_id=None, conversation_id=None, expect=()):
        found = False

        def mask(match: re.Match) -> str:
            nonlocal found
            digits = re.sub(r"\D", "", match.group(0))
            if not _luhn_ok(digits):
                return match.group(0)
            found = True
            return f"{digits[:6]}{'*' * (len(digits) - 10)}{digits[-4:]}"

        masked = _CARD.sub(mask, text)
        labels = frozenset({"CREDIT_CARD"}) if found else frozenset()
        return EdgeResult(masked, labels, found, False)

    module.EdgeResult = EdgeResult
    module.protect_incoming = protect_incoming
    return module


# --------------------------------------------------------------------------- servers


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def running(app: Sanic) -> AsyncIterator[str]:
    """Serve a Sanic app on a free port inside the test's event loop; yield its base URL."""
    sock = free_socket()
    port = sock.getsockname()[1]
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()


class FakeAgent:
    """Stands in for Rasa's agent: records each message and answers through its channel."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_message(self, message: Any) -> None:
        self.messages.append(message)
        await message.output_channel.send_text_message(
            message.sender_id, f"You said: {message.text}"
        )

    def texts(self) -> list[str]:
        return [m.text for m in self.messages]


def rasa_style_app(name: str, channels: list[Any], agent: FakeAgent) -> Sanic:
    """A Sanic app wired the way ``rasa run`` wires input channels."""
    from rasa.core.channels.channel import register

    app = Sanic(name, configure_logging=False)
    app.ctx.agent = agent
    register(channels, app, route="/webhooks/")
    return app


# --------------------------------------------------------------------------- socket.io client


class ChatClient:
    """A rasa-webchat-like client (socket.io, polling transport)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.confirms: asyncio.Queue = asyncio.Queue()
        self.replies: asyncio.Queue = asyncio.Queue()
        self.barriers: asyncio.Queue = asyncio.Queue()
        self.receipts: list[str] = []  # message ids the channel said it wrote down, in order
        self.session_id: str | None = None
        self.sio.on("session_confirm", self._on_confirm)
        self.sio.on("message_received", lambda data: self.receipts.append(data["message_id"]))
        self.sio.on("bot_uttered", self.replies.put_nowait)
        self.sio.on("barrier", self.barriers.put_nowait)

    def _on_confirm(self, data: Any) -> None:
        self.session_id = data.get("session_id") if isinstance(data, dict) else data
        self.confirms.put_nowait(self.session_id)

    async def connect(self) -> ChatClient:
        await self.sio.connect(
            self.url, transports=["polling"], socketio_path="/socket.io", wait_timeout=5
        )
        return self

    async def close(self) -> None:
        await self.sio.disconnect()
        writer = self.sio.eio.write_loop_task  # its last request may reopen the HTTP session
        if writer is not None:
            await asyncio.wait_for(writer, TIMEOUT)
        http = self.sio.eio.http
        if http is not None and not http.closed:
            await http.close()

    async def request_session(self, session_id: str | None = None, token: str | None = None) -> str:
        data: dict[str, Any] = {"session_id": session_id}
        if token:
            data["customData"] = {"auth_token": token}
        await self.sio.emit("session_request", data)
        return await asyncio.wait_for(self.confirms.get(), TIMEOUT)

    async def say(
        self,
        text: str,
        token: str | None = None,
        *,
        extra: dict[str, Any] | None = None,
        session_id: str | None = None,
        message_id: str | None = None,
        resent: bool = False,
    ) -> None:
        """Send a message; ``message_id``/``resent`` as the page's delivery script names a copy."""
        custom = dict(extra or {})
        if token:
            custom["auth_token"] = token
        data: dict[str, Any] = {
            "message": text,
            "customData": custom,
            "session_id": session_id or self.session_id,
        }
        if message_id is not None:
            data["message_id"] = message_id
        if resent:
            data["resent"] = True
        await self.sio.emit("user_uttered", data)

    async def reply(self) -> dict:
        return await asyncio.wait_for(self.replies.get(), TIMEOUT)

    async def confirmed(self) -> str:
        return await asyncio.wait_for(self.confirms.get(), TIMEOUT)

    async def pending_replies(self, server: socketio.AsyncServer) -> list[dict]:
        """Everything the server sent this client so far (ordered barrier, no sleeping)."""
        await server.emit("barrier", 1, room=self.sio.get_sid())
        await asyncio.wait_for(self.barriers.get(), TIMEOUT)
        found = []
        while not self.replies.empty():
            found.append(self.replies.get_nowait())
        return found


# --------------------------------------------------------------------------- fake Graph API


class FakeGraph:
    """A local stand-in for graph.facebook.com that records what was sent."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.url = ""
        #: account_linking_token -> PSID, as Messenger's log-in button would have made them
        self.linking_tokens: dict[str, str] = {}
        self.lookups: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "authorization": request.headers.get("Authorization"),
                "json": await request.json(),
            }
        )
        return web.json_response({"recipient_id": "x", "message_id": "m"})

    async def me(self, request: web.Request) -> web.Response:
        """``GET /me?fields=recipient&account_linking_token=...`` (account linking)."""
        self.lookups.append(
            {"query": dict(request.query), "authorization": request.headers.get("Authorization")}
        )
        psid = self.linking_tokens.get(request.query.get("account_linking_token", ""))
        if psid is None or request.query.get("fields") != "recipient":
            return web.json_response({"error": {"code": 100, "message": "invalid"}}, status=400)
        return web.json_response({"id": "PAGE", "recipient": psid})

    def messages_to(self, psid: str) -> list[dict[str, Any]]:
        return [
            c["json"]["message"]
            for c in self.calls
            if c["json"].get("recipient", {}).get("id") == psid and "message" in c["json"]
        ]


@pytest.fixture()
async def fake_graph() -> AsyncIterator[FakeGraph]:
    """A local stand-in for the Graph API that records what the channel sent."""
    graph = FakeGraph()
    app = web.Application()
    app.router.add_post("/v18.0/me/messages", graph.handle)
    app.router.add_get("/v18.0/me", graph.me)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = free_socket()
    await web.SockSite(runner, sock).start()
    graph.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v18.0"
    try:
        yield graph
    finally:
        await runner.cleanup()
