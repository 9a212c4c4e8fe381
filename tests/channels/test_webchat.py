"""The webchat channel against real socket.io clients (polling) on a Rasa-style Sanic app.

Each attack is played for real: a second client reusing a session id, forged and unknown ids,
a token for one customer in another customer's conversation, smuggled metadata. The fake
agent records what Rasa would have received.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from cartguard.channels import replies
from cartguard.channels.guard import MessageGuard
from cartguard.channels.ratelimit import MemoryRateLimiter, Rate
from cartguard.channels.sessions import issue_ticket, verify_ticket
from cartguard.channels.webchat import SecureSocketIOInput
from cartguard.identity import issue_login_token, verify_login_token
from cartguard.keys import Keys, load_keys
from tests.channels.harness import ChatClient, FakeAgent, rasa_style_app, running

CARD = "4111 1111 1111 1111"
XSS = "<script>alert('x')</script><img src=x onerror=alert(1)> **bold** [a](javascript:alert(2))"


@dataclass
class Webchat:
    url: str
    channel: SecureSocketIOInput
    agent: FakeAgent
    clients: list[ChatClient]
    customers: list[int]

    async def client(self) -> ChatClient:
        client = ChatClient(self.url)
        self.clients.append(client)
        return await client.connect()

    def token(self, index: int, ttl: int = 600) -> str:
        return issue_login_token(self.customers[index], ttl)

    def forwarded_to(self, conversation_id: str) -> list[str]:
        return [m.text for m in self.agent.messages if m.sender_id == conversation_id]


def make_guard(sender_burst: int = 50, ip_burst: int = 500) -> MessageGuard:
    return MessageGuard(
        ip_limiter=MemoryRateLimiter(Rate(ip_burst, 1)),
        sender_limiter=MemoryRateLimiter(Rate(sender_burst, 1)),
    )


@pytest.fixture()
async def webchat(channel_db, edge) -> AsyncIterator[Webchat]:
    channel = SecureSocketIOInput.from_credentials(
        {
            "user_message_evt": "user_uttered",
            "bot_message_evt": "bot_uttered",
            "session_persistence": True,
            "metadata_key": "customData",
        }
    )
    channel._guard = make_guard()
    agent = FakeAgent()
    app = rasa_style_app("webchat_test", [channel], agent)
    clients: list[ChatClient] = []
    async with running(app) as url:
        try:
            yield Webchat(url, channel, agent, clients, channel_db)
        finally:  # close sockets while the server is still up
            for client in clients:
                if client.sio.connected:
                    await client.close()


def conversation(ticket_value: str) -> str:
    ticket = verify_ticket(load_keys().raw("session_key"), ticket_value)
    assert ticket is not None, "the server confirmed a session id it did not sign"
    return ticket.conversation_id


async def test_a_conversation_gets_replies_and_rasa_sees_only_the_public_half(webchat) -> None:
    client = await webchat.client()
    ticket = await client.request_session()
    conversation_id = conversation(ticket)

    await client.say("hello there")
    assert (await client.reply()) == {"text": "You said: hello there"}

    [message] = webchat.agent.messages
    assert message.sender_id == conversation_id
    assert ticket.split(".")[1] not in message.sender_id  # the signature never reaches Rasa
    assert message.input_channel == "socketio"
    assert message.metadata == {}


async def test_signed_in_shopper_token_is_passed_and_other_metadata_stripped(webchat) -> None:
    client = await webchat.client()
    await client.request_session()
    token = webchat.token(0)

    await client.say(
        "where is my order",
        token,
        extra={"customer_id": webchat.customers[1], "role": "admin", "pii_removed": []},
    )
    await client.reply()

    [message] = webchat.agent.messages
    assert message.metadata == {"auth_token": token}
    assert verify_login_token(message.metadata["auth_token"]) == webchat.customers[0]


async def test_forged_login_token_is_dropped_not_forwarded(webchat) -> None:
    forged_keys = Keys(values={"login_key": "an-attacker-chosen-key-" * 2}, vault_keys={}, dev=True)
    forged = issue_login_token(webchat.customers[1], 600, keys=forged_keys)
    client = await webchat.client()
    await client.request_session()

    await client.say("show my balance", forged)
    await client.reply()

    [message] = webchat.agent.messages
    assert message.metadata == {}  # treated as anonymous; the forged token never reaches Rasa


async def test_second_client_reusing_a_session_id_gets_a_fresh_one_and_hears_nothing(
    webchat,
) -> None:
    owner = await webchat.client()
    ticket = await owner.request_session()
    victim_conversation = conversation(ticket)
    await owner.say("my order CG-123456 please", webchat.token(0))
    await owner.reply()

    # The intruder tells who it is (customer B) and presents A's id: fresh id at once.
    intruder = await webchat.client()
    fresh = await intruder.request_session(ticket, token=webchat.token(1))
    assert fresh != ticket and conversation(fresh) != victim_conversation

    # Like the widget, a second intruder sends no token with the request: it is bound to the
    # id but hears nothing, and its first message moves it to a fresh session.
    lurker = await webchat.client()
    assert await lurker.request_session(ticket) == ticket
    await owner.say("and my invoice", webchat.token(0))
    assert (await owner.reply())["text"] == "You said: and my invoice"
    assert await lurker.pending_replies(webchat.channel.sio) == []
    assert await intruder.pending_replies(webchat.channel.sio) == []

    await lurker.say("what did they order?")
    moved_to = await lurker.confirmed()
    assert moved_to != ticket
    assert (await lurker.reply())["text"] == replies.NEW_CONVERSATION_SIGNED_OUT
    assert webchat.forwarded_to(victim_conversation) == [
        "my order CG-123456 please",
        "and my invoice",
    ]


async def test_anonymous_session_copied_while_its_owner_is_connected_gets_a_fresh_id(
    webchat,
) -> None:
    first = await webchat.client()
    ticket = await first.request_session()
    await first.say("hi")
    await first.reply()

    copy = await webchat.client()
    fresh = await copy.request_session(ticket)
    assert fresh != ticket
    await copy.say("hello")
    assert (await copy.reply())["text"] == "You said: hello"
    assert await first.pending_replies(webchat.channel.sio) == []
    assert webchat.forwarded_to(conversation(ticket)) == ["hi"]


@pytest.mark.parametrize(
    "presented",
    [
        "0123456789abcdef0123456789abcdef",  # a stock-style id the client made up
        "../../etc/passwd",
        "x" * 500,
        "tampered",  # a real ticket with its signature altered (built in the test)
        "other-key",  # well-formed, signed with another installation's key
        "never-issued",  # signed with our key but never issued (no record)
    ],
)
async def test_forged_or_unknown_session_ids_get_a_fresh_session(webchat, presented) -> None:
    key = load_keys().raw("session_key")
    if presented == "tampered":
        real = await (await webchat.client()).request_session()
        body, signature = real.split(".")
        presented = f"{body}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    elif presented == "other-key":
        presented = issue_ticket(b"k" * 32).value
    elif presented == "never-issued":
        presented = issue_ticket(key).value

    client = await webchat.client()
    fresh = await client.request_session(presented)
    assert fresh != presented
    assert verify_ticket(key, fresh) is not None
    await client.say("hi")
    await client.reply()
    assert webchat.agent.messages[-1].sender_id == conversation(fresh)


async def test_token_for_customer_a_cannot_act_in_customer_b_conversation(webchat) -> None:
    b = await webchat.client()
    b_ticket = await b.request_session()
    await b.say("hello", webchat.token(1))
    await b.reply()

    a = await webchat.client()
    assert await a.request_session(b_ticket) == b_ticket  # widget-style: no token yet
    await a.say("cancel my order", webchat.token(0))
    assert await a.confirmed() != b_ticket
    assert (await a.reply())["text"] == replies.NEW_CONVERSATION_OTHER_ACCOUNT

    # Naming B's session in the message itself does not help either.
    await a.say("cancel my order", webchat.token(0), session_id=b_ticket)
    assert (await a.reply())["text"] == replies.NO_SESSION

    assert webchat.forwarded_to(conversation(b_ticket)) == ["hello"]
    assert await b.pending_replies(webchat.channel.sio) == []
    await b.say("still mine", webchat.token(1))
    assert (await b.reply())["text"] == "You said: still mine"


async def test_reload_resumes_the_conversation_for_its_owner(webchat) -> None:
    first = await webchat.client()
    ticket = await first.request_session()
    await first.say("first visit", webchat.token(2))
    await first.reply()
    await first.close()

    reloaded = await webchat.client()
    assert await reloaded.request_session(ticket) == ticket
    await reloaded.say("after reload", webchat.token(2))
    assert (await reloaded.reply())["text"] == "You said: after reload"
    assert webchat.forwarded_to(conversation(ticket)) == ["first visit", "after reload"]


async def test_signing_in_mid_conversation_starts_a_fresh_one(webchat) -> None:
    client = await webchat.client()
    ticket = await client.request_session()
    await client.say("hi")
    await client.reply()

    await client.say("my balance", webchat.token(0))
    assert await client.confirmed() != ticket
    assert (await client.reply())["text"] == replies.NEW_CONVERSATION_SIGNED_IN
    assert webchat.forwarded_to(conversation(ticket)) == ["hi"]


async def test_expired_token_cannot_continue_a_customer_conversation(webchat) -> None:
    client = await webchat.client()
    ticket = await client.request_session()
    await client.say("hi", webchat.token(0))
    await client.reply()

    await client.say("my invoices", webchat.token(0, ttl=-60))
    assert await client.confirmed() != ticket
    assert (await client.reply())["text"] == replies.NEW_CONVERSATION_SIGNED_OUT
    assert webchat.forwarded_to(conversation(ticket)) == ["hi"]


async def test_message_before_session_request_is_refused(webchat) -> None:
    client = await webchat.client()
    await client.say("hi", session_id="0123456789abcdef0123456789abcdef")
    assert (await client.reply())["text"] == replies.NO_SESSION
    assert webchat.agent.messages == []


async def test_card_number_is_masked_before_rasa_sees_it(webchat) -> None:
    client = await webchat.client()
    await client.request_session()
    await client.say(f"my card is {CARD} exp 12/29", webchat.token(0))
    await client.reply()

    [message] = webchat.agent.messages
    digits = CARD.replace(" ", "")
    assert digits not in message.text.replace(" ", "")
    assert "CREDIT_CARD" in message.metadata["pii_removed"]


async def test_markup_passes_through_as_plain_text(webchat) -> None:
    client = await webchat.client()
    await client.request_session()
    await client.say(XSS)
    reply = await client.reply()

    assert webchat.agent.texts() == [XSS]
    # The channel neither executes nor rewrites markup; it is data in a "text" field, and
    # the widget page (web service) is responsible for rendering it as text.
    assert reply == {"text": f"You said: {XSS}"}


async def test_too_long_message_is_answered_and_not_forwarded(webchat) -> None:
    client = await webchat.client()
    await client.request_session()
    limit = webchat.channel.guard.max_chars
    await client.say("a" * (limit + 1))
    assert (await client.reply())["text"] == replies.too_long(limit)
    await client.say("a" * limit)
    await client.reply()
    assert [len(t) for t in webchat.agent.texts()] == [limit]


async def test_sender_rate_limit_answers_politely(webchat) -> None:
    webchat.channel._guard = make_guard(sender_burst=3)
    client = await webchat.client()
    await client.request_session()
    for i in range(5):
        await client.say(f"message {i}")
    answers = [(await client.reply())["text"] for _ in range(5)]

    assert webchat.agent.texts() == ["message 0", "message 1", "message 2"]
    assert answers.count(replies.TOO_FAST) == 2


async def test_edge_failure_fails_closed(webchat, monkeypatch) -> None:
    import cartguard.channels.tokenize as pii_edge

    def broken(*args, **kwargs):
        raise RuntimeError("detector crashed")

    monkeypatch.setattr(pii_edge, "detect_incoming", broken)
    client = await webchat.client()
    await client.request_session()
    await client.say(f"card {CARD}")
    assert (await client.reply())["text"] == replies.UNAVAILABLE
    assert webchat.agent.messages == []


async def test_a_turn_that_could_not_be_stored_is_not_answered_only_refused(
    webchat, monkeypatch
) -> None:
    """Rasa answers while it predicts and stores the turn afterwards: a save that fails (the
    database restarting) must not leave the shopper with an answer the conversation lacks."""

    async def answers_then_cannot_store(message) -> None:
        webchat.agent.messages.append(message)
        await message.output_channel.send_text_message(message.sender_id, "Your order shipped.")
        raise RuntimeError("the tracker database did not answer; the turn was not stored")

    monkeypatch.setattr(webchat.agent, "handle_message", answers_then_cannot_store)
    client = await webchat.client()
    await client.request_session()
    await client.say("where is my order?")
    assert (await client.reply())["text"] == replies.UNAVAILABLE
    assert await client.pending_replies(webchat.channel.sio) == []


async def test_a_stored_turn_s_answers_arrive_in_order_once_it_is_stored(webchat) -> None:
    client = await webchat.client()
    await client.request_session()
    await client.say("first")
    await client.say("second")
    assert [(await client.reply())["text"] for _ in range(2)] == [
        "You said: first",
        "You said: second",
    ]
    assert await client.pending_replies(webchat.channel.sio) == []


async def test_custom_json_response_cannot_pick_another_room(webchat) -> None:
    victim = await webchat.client()
    victim_ticket = await victim.request_session()
    await victim.say("hi")
    await victim.reply()
    attacker = await webchat.client()
    await attacker.request_session()
    await attacker.say("hi")
    await attacker.reply()

    output = webchat.channel.get_output_channel()
    await output.send_custom_json(
        conversation(attacker.session_id),
        {"data": {"text": "custom"}, "room": conversation(victim_ticket)},
    )
    assert (await attacker.reply()) == {"text": "custom"}
    assert await victim.pending_replies(webchat.channel.sio) == []


async def test_works_when_enter_room_is_a_coroutine(webchat, monkeypatch) -> None:
    """python-socketio >= 5.10 made enter_room a coroutine; Rasa's channel then went silent."""
    server = webchat.channel.sio
    sync_enter = server.enter_room
    entered: list[str] = []

    async def async_enter(sid: str, room: str, namespace: str | None = None) -> None:
        entered.append(room)
        sync_enter(sid, room, namespace=namespace)

    monkeypatch.setattr(server, "enter_room", async_enter)
    client = await webchat.client()
    ticket = await client.request_session()
    await client.say("hi")
    assert (await client.reply())["text"] == "You said: hi"
    assert entered == [conversation(ticket)]


async def test_email_is_tokenized_by_the_real_detector(webchat, edge) -> None:
    if edge != "real":
        pytest.skip("cartguard.channels.tokenize is not installed yet")
    client = await webchat.client()
    await client.request_session()
    await client.say("please write to jo.tester@example.org", webchat.token(0))
    await client.reply()
    [message] = webchat.agent.messages
    assert "jo.tester@example.org" not in message.text
    assert "EMAIL_ADDRESS" in message.metadata["pii_removed"]
