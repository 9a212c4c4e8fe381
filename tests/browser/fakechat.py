"""A stand-in for Rasa's socket.io channel and ``trigger_intent`` API, for browser tests.

It speaks the protocol the rasa-webchat widget expects (``session_request`` ->
``session_confirm``, ``user_uttered`` -> ``bot_uttered``), checks the shopper's login token
from ``customData`` like our channel does, answers "card" requests with a real secure-form
link, and turns an authenticated ``trigger_intent`` into a chat message, so the page, the
widget, the form and the outbox can be driven end to end without loading a Rasa model.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

import jwt
import socketio
from aiohttp import web


@dataclass
class FakeChat:
    jwt_secret: str
    port: int
    web_base_url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    triggered: list[dict[str, Any]] = field(default_factory=list)
    customers: dict[str, int | None] = field(default_factory=dict)  # session id -> customer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeChat:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        if not ready.wait(15):
            raise RuntimeError("fake chat backend did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
        app = web.Application()
        sio.attach(app, socketio_path="/socket.io/")
        self.sio = sio
        sids: dict[str, str] = {}  # conversation id -> socket id

        @sio.on("session_request")
        async def session_request(sid: str, data: Any) -> None:
            session_id = (data or {}).get("session_id") or secrets.token_hex(16)
            sids[session_id] = sid
            await sio.emit("session_confirm", session_id, room=sid)

        @sio.on("user_uttered")
        async def user_uttered(sid: str, data: dict[str, Any]) -> None:
            from cartguard.identity import verify_login_token
            from cartguard.links import issue_link
            from cartguard.shop.db import session_scope

            session_id = data.get("session_id") or ""
            sids[session_id] = sid
            token = (data.get("customData") or {}).get("auth_token")
            customer_id = verify_login_token(token)
            self.customers[session_id] = customer_id
            self.received.append({**data, "customer_id": customer_id})
            text = str(data.get("message") or "")
            if text.startswith("/greet"):
                who = "a guest" if customer_id is None else f"customer {customer_id}"
                reply = f"Hi! I'm the Cartguard assistant, an automated helper. You are {who}."
            elif "card" in text.lower() and customer_id is not None:
                with session_scope() as session:
                    link = issue_link(
                        session, conversation_id=session_id, customer_id=customer_id, purpose="card"
                    )
                url = f"{self.web_base_url}/s/{link.token}"
                reply = f"Please add the card on our secure form: [secure card form]({url})"
            else:
                reply = "Please log in first."
            await sio.emit("bot_uttered", {"text": reply}, room=sid)

        async def trigger_intent(request: web.Request) -> web.Response:
            auth = request.headers.get("Authorization", "")
            try:
                jwt.decode(auth.removeprefix("Bearer "), self.jwt_secret, algorithms=["HS256"])
            except jwt.PyJWTError:
                return web.json_response({"status": "failure"}, status=401)
            body = await request.json()
            conversation = request.match_info["conversation_id"]
            self.triggered.append({"conversation_id": conversation, **body})
            last4 = (body.get("entities") or {}).get("card_last4", "????")
            if conversation in sids:
                await sio.emit(
                    "bot_uttered",
                    {"text": f"Thanks, your card ending in {last4} is saved as your default."},
                    room=sids[conversation],
                )
            return web.json_response({"tracker": {"sender_id": conversation}})

        app.router.add_post("/conversations/{conversation_id}/trigger_intent", trigger_intent)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        self.loop.run_until_complete(site.start())
        self.runner = runner
        ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        future = asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop)
        try:
            future.result(5)
        except Exception:
            pass
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
