"""Two webchat "replicas" in one process, sharing a Redis of their own (cartguard.channels.cluster).

Each replica is the real channel on its own Rasa-style Sanic app; the shopper's socket lives
on one, and the other plays the replica that the load balancer handed the web service's
``trigger_intent``. Attacks played: a reply emitted on the wrong replica, an anonymous ticket
copied to another replica while its owner is connected, a pickle bomb published on the
fan-out channel, and Redis going away mid-conversation.
"""

from __future__ import annotations

import asyncio
import os
import pickle
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from bench.services import OwnRedis, started
from cartguard.channels import cluster
from cartguard.channels.cluster import CHANNEL, RedisHolders
from cartguard.channels.webchat import SecureSocketIOInput
from cartguard.identity import issue_login_token
from tests.channels.conftest import channel_db, edge  # noqa: F401 - fixtures
from tests.channels.harness import ChatClient, FakeAgent, rasa_style_app, running
from tests.channels.test_webchat import conversation, make_guard

pytestmark = [pytest.mark.services]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with started(OwnRedis(tmp_path_factory.mktemp("fanout-redis"))) as own:
        yield own.url + "/0"


@dataclass
class Replica:
    url: str
    channel: SecureSocketIOInput
    agent: FakeAgent


@dataclass
class TwoReplicas:
    a: Replica
    b: Replica
    clients: list[ChatClient]

    async def client(self, replica: Replica) -> ChatClient:
        client = ChatClient(replica.url)
        self.clients.append(client)
        return await client.connect()


def _channel(redis_url: str | None) -> SecureSocketIOInput:
    channel = SecureSocketIOInput(
        metadata_key="customData", socketio_redis_url=redis_url, guard=make_guard()
    )
    channel.socketio_redis_url = redis_url  # None here means "one process", not the setting
    return channel


@pytest.fixture()
async def replicas(channel_db, edge, redis_url) -> AsyncIterator[TwoReplicas]:  # noqa: F811
    apps = []
    for name in ("fanout_a", "fanout_b"):
        channel = _channel(redis_url)
        agent = FakeAgent()
        apps.append((rasa_style_app(f"{name}_{os.getpid()}", [channel], agent), channel, agent))
    clients: list[ChatClient] = []
    async with running(apps[0][0]) as url_a, running(apps[1][0]) as url_b:
        pair = TwoReplicas(
            Replica(url_a, apps[0][1], apps[0][2]), Replica(url_b, apps[1][1], apps[1][2]), clients
        )
        try:
            yield pair
        finally:
            for client in clients:
                if client.sio.connected:
                    await client.close()
            for _, channel, _ in apps:
                if isinstance(channel._holders, RedisHolders):
                    await channel._holders.close()


async def _on_a_with_a_reply(pair: TwoReplicas, token: str | None = None) -> ChatClient:
    client = await pair.client(pair.a)
    await client.request_session()
    await client.say("hello there", token)
    assert (await client.reply())["text"] == "You said: hello there"
    return client


async def test_a_reply_produced_on_another_replica_reaches_the_shoppers_socket(
    replicas,
    channel_db,  # noqa: F811
) -> None:
    shopper = await _on_a_with_a_reply(replicas, issue_login_token(channel_db[0], 600))
    conversation_id = conversation(shopper.session_id)

    # what Rasa on replica B does for the web service's trigger_intent(output_channel=latest)
    output_on_b = replicas.b.channel.get_output_channel()
    await output_on_b.send_text_message(conversation_id, "Your card ending 4242 is saved.")

    assert (await shopper.reply())["text"] == "Your card ending 4242 is saved."


async def test_each_answer_reaches_the_asking_socket_once_and_its_other_tab_once(
    replicas,
    channel_db,  # noqa: F811
) -> None:
    """The asking socket gets a turn's answers straight from its replica's queue, the
    conversation's other sockets (a second tab on the other replica) through Redis: each
    socket exactly once, never a second copy that a client would take for the next answer."""
    token = issue_login_token(channel_db[0], 600)
    shopper = await _on_a_with_a_reply(replicas, token)
    tab = await replicas.client(replicas.b)
    assert await tab.request_session(shopper.session_id, token) == shopper.session_id
    await tab.say("second tab here", token)
    assert (await tab.reply())["text"] == "You said: second tab here"
    assert (await shopper.reply())["text"] == "You said: second tab here"
    for _ in range(3):
        await shopper.say("and again", token)
        assert (await shopper.reply())["text"] == "You said: and again"
        assert (await tab.reply())["text"] == "You said: and again"
    await asyncio.sleep(0.5)  # a copy through Redis would have arrived by now
    assert await shopper.pending_replies(replicas.a.channel.sio) == []
    assert await tab.pending_replies(replicas.b.channel.sio) == []


async def test_a_shopper_who_moves_replica_right_after_an_answer_does_not_get_it_again(
    replicas,
    channel_db,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The copy for the conversation's other sockets goes out before the asking socket's own.

    Seen in the soak: a shopper took an answer, its socket moved to the other replica (the
    balancer, a network change) and joined the conversation there while the answering replica,
    busy, was still publishing that answer for the other tabs: the new socket got it a second
    time and took it for the answer to its next line. Here replica A publishes slowly.
    """
    publish = replicas.a.channel.sio.manager._publish

    async def slowly(data: object) -> None:
        await asyncio.sleep(0.5)  # a replica whose event loop is busy
        await publish(data)

    monkeypatch.setattr(replicas.a.channel.sio.manager, "_publish", slowly)
    token = issue_login_token(channel_db[0], 600)
    shopper = await replicas.client(replicas.a)
    ticket = await shopper.request_session(None, token)
    await shopper.say("where is my order", token)
    assert (await shopper.reply())["text"] == "You said: where is my order"
    await shopper.close()
    moved = await replicas.client(replicas.b)
    assert await moved.request_session(ticket, token) == ticket
    await asyncio.sleep(1.0)  # the slow publication has surely arrived by now
    assert await moved.pending_replies(replicas.b.channel.sio) == []
    await moved.say("and my refund", token)
    assert (await moved.reply())["text"] == "You said: and my refund"


async def test_a_reply_for_one_conversation_reaches_no_other_socket(replicas) -> None:
    shopper = await _on_a_with_a_reply(replicas)
    bystander_a = await _on_a_with_a_reply(replicas)
    bystander_b = await replicas.client(replicas.b)
    await bystander_b.request_session()
    await bystander_b.say("hi")
    await bystander_b.reply()

    await replicas.b.channel.get_output_channel().send_text_message(
        conversation(shopper.session_id), "only for you"
    )
    assert (await shopper.reply())["text"] == "only for you"
    assert await bystander_a.pending_replies(replicas.a.channel.sio) == []
    assert await bystander_b.pending_replies(replicas.b.channel.sio) == []


async def test_an_anonymous_ticket_copied_to_another_replica_gets_a_fresh_session(
    replicas,
) -> None:
    owner = await _on_a_with_a_reply(replicas)
    ticket = owner.session_id

    copy = await replicas.client(replicas.b)
    fresh = await copy.request_session(ticket)
    assert fresh != ticket
    await copy.say("what did they say?")
    assert (await copy.reply())["text"] == "You said: what did they say?"
    assert [m.sender_id for m in replicas.b.agent.messages] == [conversation(fresh)]
    assert await owner.pending_replies(replicas.a.channel.sio) == []


async def test_two_copies_racing_on_two_replicas_leave_one_holder(replicas) -> None:
    owner = await _on_a_with_a_reply(replicas)
    ticket = owner.session_id
    await owner.close()  # the owner left: the ticket is free for exactly one new socket

    copies = [await replicas.client(r) for r in (replicas.a, replicas.b, replicas.a, replicas.b)]
    confirmed = await asyncio.gather(*(c.request_session(ticket) for c in copies))
    assert confirmed.count(ticket) == 1, confirmed


async def test_once_the_holder_leaves_the_conversation_resumes_on_the_other_replica(
    replicas,
) -> None:
    owner = await _on_a_with_a_reply(replicas)
    ticket = owner.session_id
    await owner.close()

    again = await replicas.client(replicas.b)
    assert await again.request_session(ticket) == ticket
    await again.say("me again")
    assert (await again.reply())["text"] == "You said: me again"


async def test_a_hold_lapses_when_its_replica_stops_renewing_it(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "HOLD_SECONDS", 1)
    monkeypatch.setattr(cluster, "HEARTBEAT_SECONDS", 0.2)
    live, dead, other = RedisHolders(redis_url), RedisHolders(redis_url), RedisHolders(redis_url)
    try:
        assert await live.acquire("conv-live", "sid-1")
        assert await dead.acquire("conv-dead", "sid-2")
        dead._heartbeat.cancel()  # the replica was killed: nothing renews its holds
        await asyncio.sleep(1.6)
        assert not await other.acquire("conv-live", "sid-3")  # renewed by the heartbeat
        assert await other.acquire("conv-dead", "sid-3")  # lapsed
    finally:
        for holders in (live, other):
            await holders.close()


async def test_the_fanout_never_unpickles_what_arrives_on_its_redis_channel(
    replicas, tmp_path: Path
) -> None:
    shopper = await _on_a_with_a_reply(replicas)
    marker = tmp_path / "pwned"

    class Bomb:
        def __reduce__(self):
            return (Path.touch, (marker,))

    publisher = redis.Redis.from_url(replicas.a.channel.socketio_redis_url)
    try:
        publisher.publish(CHANNEL, pickle.dumps(Bomb()))
        publisher.publish(CHANNEL, b"\x80not json either")
    finally:
        publisher.close()
    await replicas.b.channel.get_output_channel().send_text_message(
        conversation(shopper.session_id), "still listening"
    )
    assert (await shopper.reply())["text"] == "still listening"
    assert not marker.exists()


async def test_with_redis_gone_a_replica_still_answers_its_own_sockets(
    channel_db,  # noqa: F811 - fixture
    edge,  # noqa: F811 - fixture
    tmp_path: Path,
) -> None:
    own = OwnRedis(tmp_path / "redis")
    own.spawn()
    own.wait()
    channel = _channel(own.url + "/0")
    agent = FakeAgent()
    app = rasa_style_app(f"fanout_down_{os.getpid()}", [channel], agent)
    try:
        async with running(app) as url:
            client = await ChatClient(url).connect()
            try:
                await client.request_session()
                await client.say("before")
                assert (await client.reply())["text"] == "You said: before"
                own.stop()
                await client.say("during")
                assert (await client.reply())["text"] == "You said: during"
            finally:
                await client.close()
    finally:
        own.stop()
        if isinstance(channel._holders, RedisHolders):
            await channel._holders.close()
