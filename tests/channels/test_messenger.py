"""The Messenger channel on a Rasa-style Sanic app, with a local fake Graph API.

Webhook bodies are signed here with the installation's app secret exactly as Facebook signs
them; the attacks (no signature, wrong one, SHA-1 only, replays) use the same bodies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
import pytest

from cartguard.account_links import complete_linking, linked_customer, unlink
from cartguard.channels import replies
from cartguard.channels.dedupe import DatabaseDedupe
from cartguard.channels.guard import MessageGuard
from cartguard.channels.messenger import MessengerOutput, SecureFacebookInput
from cartguard.channels.ratelimit import MemoryRateLimiter, Rate
from cartguard.identity import verify_login_token
from cartguard.keys import load_keys
from cartguard.shop.db import session_scope
from tests.channels.harness import FakeAgent, FakeGraph, rasa_style_app, running

PATH = "/webhooks/facebook/webhook"
CARD = "4111 1111 1111 1111"


def make_guard(sender_burst: int = 50, ip_burst: int = 500) -> MessageGuard:
    return MessageGuard(
        ip_limiter=MemoryRateLimiter(Rate(ip_burst, 1)),
        sender_limiter=MemoryRateLimiter(Rate(sender_burst, 1)),
    )


def event(psid: str, text: str, mid: str, *, age_seconds: float = 0) -> dict[str, Any]:
    stamp = int((time.time() - age_seconds) * 1000)
    return {
        "sender": {"id": psid},
        "recipient": {"id": "PAGE"},
        "timestamp": stamp,
        "message": {"mid": mid, "text": text},
    }


def body_of(*events: dict[str, Any]) -> bytes:
    payload = {"object": "page", "entry": [{"id": "PAGE", "time": 0, "messaging": list(events)}]}
    return json.dumps(payload).encode()


@dataclass
class Messenger:
    url: str
    channel: SecureFacebookInput
    agent: FakeAgent
    graph: FakeGraph
    http: aiohttp.ClientSession
    secret: str
    customers: list[int]

    def sign(self, body: bytes, algorithm: str = "sha256", secret: str | None = None) -> str:
        digest = hmac.new((secret or self.secret).encode(), body, getattr(hashlib, algorithm))
        return f"{algorithm}={digest.hexdigest()}"

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> int:
        if headers is None:
            headers = {"X-Hub-Signature-256": self.sign(body)}
        headers = {"Content-Type": "application/json", **headers}
        async with self.http.post(self.url + PATH, data=body, headers=headers) as resp:
            return resp.status

    async def send(self, psid: str, text: str, mid: str) -> int:
        return await self.post(body_of(event(psid, text, mid)))


@pytest.fixture()
async def messenger(channel_db, edge, fake_graph) -> AsyncIterator[Messenger]:
    keys = load_keys()
    channel = SecureFacebookInput(
        guard=make_guard(), dedupe=DatabaseDedupe(), graph_api_url=fake_graph.url
    )
    agent = FakeAgent()
    app = rasa_style_app("messenger_test", [channel], agent)
    async with running(app) as url, aiohttp.ClientSession() as http:
        yield Messenger(
            url,
            channel,
            agent,
            fake_graph,
            http,
            keys.get("messenger_app_secret"),
            channel_db,
        )


async def test_signed_message_is_answered_through_the_graph_api(messenger) -> None:
    assert await messenger.send("1001", "hello", "mid.1") == 200

    [message] = messenger.agent.messages
    assert (message.sender_id, message.text, message.input_channel) == ("1001", "hello", "facebook")
    assert message.metadata == {}  # not linked: no identity
    assert messenger.graph.messages_to("1001") == [{"text": "You said: hello"}]
    [call] = messenger.graph.calls
    assert call["authorization"] == f"Bearer {load_keys().get('messenger_page_token')}"
    assert call["query"] == {}  # the page token never travels in the URL


async def test_a_turn_that_could_not_be_stored_is_refused_not_answered(
    messenger, monkeypatch
) -> None:
    """A save that fails after Rasa answered (the database restarting) must leave the shopper
    with "try again", not silence and not an answer the stored conversation lacks."""

    async def answers_then_cannot_store(message) -> None:
        messenger.agent.messages.append(message)
        await message.output_channel.send_text_message(message.sender_id, "Your order shipped.")
        raise RuntimeError("the tracker database did not answer; the turn was not stored")

    monkeypatch.setattr(messenger.agent, "handle_message", answers_then_cannot_store)
    assert await messenger.send("1002", "where is my order?", "mid.held") == 200
    assert messenger.graph.messages_to("1002") == [{"text": replies.UNAVAILABLE}]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": "sha256="},
        {"X-Hub-Signature-256": "garbage"},
    ],
    ids=["missing", "wrong", "empty", "garbage"],
)
async def test_bad_signatures_are_refused(messenger, headers) -> None:
    assert await messenger.post(body_of(event("1002", "hi", "mid.2")), headers) == 403
    assert messenger.agent.messages == []
    assert messenger.graph.calls == []


async def test_sha1_only_signature_is_refused(messenger) -> None:
    body = body_of(event("1003", "hi", "mid.3"))
    status = await messenger.post(body, {"X-Hub-Signature": messenger.sign(body, "sha1")})
    assert status == 403
    assert messenger.agent.messages == []


async def test_signature_of_another_body_or_secret_is_refused(messenger) -> None:
    body = body_of(event("1004", "refund everything", "mid.4"))
    other = body_of(event("1004", "hi", "mid.4"))
    assert await messenger.post(body, {"X-Hub-Signature-256": messenger.sign(other)}) == 403
    wrong_secret = messenger.sign(body, secret="not-the-app-secret")
    assert await messenger.post(body, {"X-Hub-Signature-256": wrong_secret}) == 403
    assert messenger.agent.messages == []


async def test_replayed_webhook_is_answered_once(messenger) -> None:
    body = body_of(event("1005", "cancel my order", "mid.5"))
    assert await messenger.post(body) == 200
    assert await messenger.post(body) == 200  # acknowledged, so Facebook stops retrying

    # Same message id in a re-timestamped body (re-signed): still the same message.
    again = event("1005", "cancel my order", "mid.5")
    again["timestamp"] += 5000
    assert await messenger.post(body_of(again)) == 200

    assert messenger.agent.texts() == ["cancel my order"]
    assert len(messenger.graph.messages_to("1005")) == 1


async def test_event_older_than_the_replay_window_is_ignored(messenger) -> None:
    old = event("1006", "hi", "mid.6", age_seconds=3 * 24 * 3600)
    assert await messenger.post(body_of(old)) == 200
    assert messenger.agent.messages == []


async def test_every_event_of_a_batch_is_handled(messenger) -> None:
    body = body_of(event("1007", "one", "mid.7a"), event("1008", "two", "mid.7b"))
    assert await messenger.post(body) == 200
    assert sorted(messenger.agent.texts()) == ["one", "two"]


async def test_sender_rate_limit_gets_one_polite_reply_and_no_crash(messenger) -> None:
    messenger.channel._guard = make_guard(sender_burst=2)
    statuses = [await messenger.send("1009", f"msg {i}", f"mid.9.{i}") for i in range(5)]

    assert statuses == [200] * 5
    assert messenger.agent.texts() == ["msg 0", "msg 1"]
    sent = [m.get("text") for m in messenger.graph.messages_to("1009")]
    assert sent.count(replies.TOO_FAST) == 1  # told once, not once per flooded message


async def test_address_rate_limit_answers_429(messenger) -> None:
    messenger.channel._guard = make_guard(ip_burst=2)
    statuses = [await messenger.send("1010", f"msg {i}", f"mid.10.{i}") for i in range(4)]
    assert statuses == [200, 200, 429, 429]
    assert messenger.agent.texts() == ["msg 0", "msg 1"]


async def test_too_long_message_is_answered_not_forwarded(messenger) -> None:
    limit = messenger.channel.guard.max_chars
    assert await messenger.send("1011", "x" * (limit + 1), "mid.11") == 200
    assert messenger.agent.messages == []
    assert messenger.graph.messages_to("1011") == [{"text": replies.too_long(limit)}]


async def test_linked_sender_gets_a_short_lived_login_token(messenger) -> None:
    customer = messenger.customers[0]
    with session_scope() as session:
        complete_linking(session, customer, "1012")

    assert await messenger.send("1012", "my balance", "mid.12") == 200
    [message] = messenger.agent.messages
    token = message.metadata["auth_token"]
    assert verify_login_token(token) == customer
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 300

    with session_scope() as session:
        unlink(session, customer)
    assert await messenger.send("1012", "my balance again", "mid.12b") == 200
    assert "auth_token" not in messenger.agent.messages[-1].metadata


async def test_card_number_is_masked_on_messenger(messenger) -> None:
    assert await messenger.send("1013", f"charge {CARD}", "mid.13") == 200
    [message] = messenger.agent.messages
    assert CARD.replace(" ", "") not in message.text.replace(" ", "")
    assert "CREDIT_CARD" in message.metadata["pii_removed"]


async def test_echoes_and_receipts_are_not_forwarded(messenger) -> None:
    echo = event("1014", "our own words", "mid.14")
    echo["message"]["is_echo"] = True
    receipt = {"sender": {"id": "1014"}, "recipient": {"id": "PAGE"}, "delivery": {"mids": []}}
    assert await messenger.post(body_of(echo, receipt)) == 200
    assert messenger.agent.messages == []


async def test_verification_handshake(messenger) -> None:
    verify = load_keys().get("messenger_verify_token")
    url = messenger.url + PATH
    good = {"hub.mode": "subscribe", "hub.verify_token": verify, "hub.challenge": "c123"}
    async with messenger.http.get(url, params=good) as resp:
        assert (resp.status, await resp.text()) == (200, "c123")
    bad = dict(good, **{"hub.verify_token": "guess"})
    async with messenger.http.get(url, params=bad) as resp:
        assert resp.status == 403


async def test_links_become_url_buttons(messenger) -> None:
    from cartguard.settings import get_settings

    form = f"{get_settings().public_web_url}/s/abc"
    output = messenger.channel.get_output_channel()
    assert isinstance(output, MessengerOutput)
    await output.send_text_with_buttons(
        "1015",
        "Please use the secure form.",
        [
            {"title": "Open secure form", "url": form},
            {"title": "Talk to a human", "payload": "/contact_human_agent"},
        ],
    )
    [message] = messenger.graph.messages_to("1015")
    payload = message["attachment"]["payload"]
    assert payload["template_type"] == "button"
    assert payload["buttons"] == [
        {"type": "web_url", "url": form, "title": "Open secure form"},
        {"type": "postback", "title": "Talk to a human", "payload": "/contact_human_agent"},
    ]


async def test_account_linking_round_trip(messenger) -> None:
    from sqlalchemy import select

    from cartguard.account_links import start_linking
    from cartguard.settings import get_settings
    from cartguard.shop.models import AuditEntry

    customer = messenger.customers[1]
    with session_scope() as session:
        url = start_linking(session, "1016")
        assert url.startswith(get_settings().public_web_url + "/")
        assert "1016" not in url  # nothing about the user in the link
        assert linked_customer(session, "1016") is None
    with session_scope() as session:
        complete_linking(session, customer, "1016")
    with session_scope() as session:
        assert linked_customer(session, "1016") == customer
        assert unlink(session, customer) == 1
        assert linked_customer(session, "1016") is None
        actions = session.execute(select(AuditEntry.action)).scalars().all()
        assert {"messenger.link", "messenger.unlink"} <= set(actions)
