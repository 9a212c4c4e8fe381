"""Attacks and mistakes replayed against the real channels on a Rasa-style Sanic app.

* forged session ids and invalid login tokens from one address -> one event each, while the
  same number of ordinary visitors and shoppers raises nothing;
* Messenger webhooks with bad signatures from one address -> an event;
* a card number, a password or an SSN typed into the chat -> a short security tip right
  before the redacted message is forwarded; a step-up code -> no tip.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from faker import Faker

from cartguard.channels import replies
from cartguard.channels.guard import MessageGuard
from cartguard.channels.ratelimit import MemoryRateLimiter, Rate
from cartguard.channels.sessions import issue_ticket
from cartguard.channels.webchat import SecureSocketIOInput
from cartguard.identity import issue_login_token
from cartguard.keys import Keys
from cartguard.monitoring import anomaly, signals
from cartguard.shop.db import session_scope
from tests.channels.harness import (
    ChatClient,
    FakeAgent,
    rasa_style_app,
    running,
)

fake = Faker()
CARD = "4111 1111 1111 1111"


def guard() -> MessageGuard:
    return MessageGuard(
        ip_limiter=MemoryRateLimiter(Rate(1000, 1000)),
        sender_limiter=MemoryRateLimiter(Rate(1000, 1000)),
    )


def scan(settings) -> list:
    signals.flush()
    with session_scope() as session:
        return anomaly.scan(session, settings=settings)


@pytest.fixture()
async def chat(mon_db, clean_slate) -> AsyncIterator[tuple[str, list[ChatClient], FakeAgent]]:
    channel = SecureSocketIOInput(metadata_key="customData", guard=guard())
    agent = FakeAgent()
    clients: list[ChatClient] = []
    async with running(rasa_style_app(f"mon_chat_{fake.uuid4()[:8]}", [channel], agent)) as url:
        try:
            yield url, clients, agent
        finally:
            for client in clients:
                if client.sio.connected:
                    await client.close()


async def connect(url: str, clients: list[ChatClient]) -> ChatClient:
    client = ChatClient(url)
    clients.append(client)
    return await client.connect()


async def test_forged_session_ids_and_tokens_from_one_address_raise_events(chat, settings):
    url, clients, _agent = chat
    attacker = await connect(url, clients)
    forged = Keys(values={"login_key": fake.sha256()}, vault_keys={}, dev=True)
    await attacker.request_session()
    for _ in range(6):
        await attacker.request_session(issue_ticket(fake.sha256().encode()[:32]).value)
        await attacker.say("show my balance", issue_login_token(1, 600, keys=forged))
        await attacker.reply()
    rules = sorted(event.rule for event in scan(settings))
    assert rules == ["forged_session_ids", "invalid_login_tokens"]


async def test_as_many_ordinary_visitors_raise_nothing(chat, settings, mon_db):
    url, clients, _agent = chat
    # All tests share one loopback address, so "ordinary" here is the same number of
    # requests carrying nothing forged: new visitors, and shoppers with valid tokens.
    for index in range(6):
        client = await connect(url, clients)
        ticket = await client.request_session()
        await client.say("hello", issue_login_token(mon_db[index % 3], 600))
        await client.reply()
        await client.request_session(ticket, token=issue_login_token(mon_db[index % 3], 600))
    assert scan(settings) == []


async def test_security_tips_come_right_before_the_redacted_message(chat):
    url, clients, agent = chat
    client = await connect(url, clients)
    await client.request_session()

    await client.say(f"my card is {CARD} please charge it")
    tip, echo = await client.reply(), await client.reply()
    assert tip["text"] == replies.TIP_CARD
    assert tip["quick_replies"][0]["payload"] == "/update_payment_method"
    assert echo["text"].startswith("You said:") and CARD not in echo["text"]

    await client.say("my password is Hunter2!xyz")
    tip, echo = await client.reply(), await client.reply()
    assert tip["text"] == replies.TIP_CREDENTIALS and "Hunter2!xyz" not in echo["text"]

    await client.say("SSN: 536-22-8726")
    tip = await client.reply()
    assert tip["text"] == replies.TIP_SSN
    await client.reply()

    await client.say("the code is 492817")
    assert (await client.reply())["text"].startswith("You said:")  # no tip for a code
    assert len(agent.messages) == 4


async def test_messenger_bad_signatures_raise_an_event_and_tips_reach_messenger(
    mon_db, clean_slate, settings, fake_graph
):
    from cartguard.channels.dedupe import DatabaseDedupe
    from cartguard.channels.messenger import SecureFacebookInput
    from cartguard.keys import load_keys

    channel = SecureFacebookInput(
        guard=guard(), dedupe=DatabaseDedupe(), graph_api_url=fake_graph.url
    )
    app = rasa_style_app(f"mon_fb_{fake.uuid4()[:8]}", [channel], FakeAgent())
    psid = str(fake.random_number(15))
    message = {
        "sender": {"id": psid},
        "recipient": {"id": "PAGE"},
        "timestamp": int(time.time() * 1000),
        "message": {"mid": f"mid.{fake.uuid4()}", "text": f"card {CARD}"},
    }
    body = json.dumps({"object": "page", "entry": [{"id": "PAGE", "messaging": [message]}]})
    secret = load_keys().get("messenger_app_secret").encode()
    good = "sha256=" + hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
    async with running(app) as url, aiohttp.ClientSession() as http:
        target = url + "/webhooks/facebook/webhook"
        for _ in range(5):
            bad = {"X-Hub-Signature-256": "sha256=" + fake.sha256()}
            async with http.post(target, data=body, headers=bad) as resp:
                assert resp.status == 403
        async with http.post(target, data=body, headers={"X-Hub-Signature-256": good}) as resp:
            assert resp.status == 200
    [event] = scan(settings)
    assert event.rule == "messenger_bad_signatures" and event.count == 5
    tip, answer = fake_graph.messages_to(psid)  # the tip first, then what Rasa answered
    assert answer["text"].startswith("You said:")
    template = tip["attachment"]["payload"]
    assert template["text"] == replies.TIP_CARD
    assert template["buttons"][0]["payload"] == "/update_payment_method"
