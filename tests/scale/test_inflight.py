"""A message whose replica dies mid-turn is answered once the shopper comes back elsewhere.

Two webchat "replicas" in one process share a Redis of their own (the set-up of
:mod:`tests.scale.test_fanout`). Replica A accepts the shopper's message and never answers
it (its turn hangs, then its lease stops being renewed: what a SIGKILL leaves behind). The
shopper's socket comes back on replica B with the same ticket, as the widget does after the
load balancer moves it. Attacks and edge cases: two replicas claiming the same orphaned turn
at once, a turn the dead replica had already stored, a turn still leased by a live replica.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest
from rasa.shared.core.events import BotUttered, UserUttered

from cartguard.channels import inflight, replies, webchat
from cartguard.channels.inflight import RedisTurns, Turn, open_turn, seal_turn
from cartguard.identity import issue_login_token
from tests.channels.conftest import channel_db, edge  # noqa: F401 - fixtures
from tests.scale.test_fanout import (  # noqa: F401 - fixtures
    TwoReplicas,
    _on_a_with_a_reply,
    redis_url,
    replicas,
)

pytestmark = [pytest.mark.services]


@pytest.fixture(autouse=True)
def short_leases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inflight, "LEASE_SECONDS", 1.0)
    monkeypatch.setattr(inflight, "WAIT_SECONDS", 4.0)
    monkeypatch.setattr(inflight, "POLL_SECONDS", 0.1)


class _Dies:
    """Replica A's agent from now on: takes the message, then never answers."""

    def __init__(self, before: Callable[[Any], Awaitable[None]] | None = None) -> None:
        self.taken: list[Any] = []
        self.started = asyncio.Event()
        self.released = asyncio.Event()
        self.before = before

    async def handle_message(self, message: Any) -> None:
        self.taken.append(message)
        if self.before is not None:
            await self.before(message)
        self.started.set()
        await self.released.wait()  # the process is "dead": set only when the test ends


def _tracker_store(stored: list[Any]) -> SimpleNamespace:
    """A tracker store whose conversation holds ``stored`` (as it is when asked)."""

    async def retrieve(_conversation_id: str) -> Any:
        return SimpleNamespace(events=list(stored))

    return SimpleNamespace(retrieve=retrieve)


async def _killed_mid_turn(
    pair: TwoReplicas, monkeypatch: pytest.MonkeyPatch, text: str, token: str | None, dies: _Dies
) -> str:
    """A's shopper says ``text``; A dies while answering. Returns the shopper's ticket."""
    shopper = await _on_a_with_a_reply(pair, token)
    monkeypatch.setattr(pair.a.agent, "handle_message", dies.handle_message)
    await shopper.say(text, token)
    await asyncio.wait_for(dies.started.wait(), 10)
    turns = pair.a.channel.turns
    assert isinstance(turns, RedisTurns)
    turns.stop_renewing()  # killed: nothing renews its lease any more
    ticket = shopper.session_id
    await shopper.close()
    assert ticket is not None
    return ticket


async def test_a_message_cut_off_by_a_dead_replica_is_answered_on_the_other(
    replicas,  # noqa: F811
    channel_db,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = issue_login_token(channel_db[0], 600)
    dies = _Dies()
    try:
        ticket = await _killed_mid_turn(replicas, monkeypatch, "where is my parcel?", token, dies)

        back = await replicas.client(replicas.b)
        assert await back.request_session(ticket, token) == ticket
        assert (await back.reply())["text"] == "You said: where is my parcel?"
        replayed = replicas.b.agent.messages
        assert [m.text for m in replayed] == ["where is my parcel?"]
        assert replayed[0].message_id == dies.taken[0].message_id  # the same turn, not a new one
        assert replayed[0].metadata["auth_token"] == token  # as the customer who came back
        await back.say("and my invoice?", token)
        assert (await back.reply())["text"] == "You said: and my invoice?"
    finally:
        dies.released.set()


async def test_two_replicas_claiming_one_orphan_answer_it_once(redis_url: str) -> None:  # noqa: F811
    dead, b, c = RedisTurns(redis_url), RedisTurns(redis_url), RedisTurns(redis_url)
    try:
        turn = seal_turn("conv-race", "hello")
        await dead.begin(turn)
        dead.stop_renewing()
        claims = await asyncio.gather(*(x.orphans("conv-race") for x in (b, c, b, c)))
        assert sorted(len(found) for found in claims) == [0, 0, 0, 1]
        assert [t.turn_id for found in claims for t in found] == [turn.turn_id]
    finally:
        for turns in (dead, b, c):
            await turns.close()


async def test_a_turn_its_live_replica_finishes_is_not_replayed(redis_url: str) -> None:  # noqa: F811
    live, other = RedisTurns(redis_url), RedisTurns(redis_url)
    try:
        turn = seal_turn("conv-live", "hello")
        await live.begin(turn)

        async def finish_later() -> None:
            await asyncio.sleep(2.5)  # longer than a lease: only renewals keep it
            await live.end(turn)

        finishing = asyncio.create_task(finish_later())
        assert await other.orphans("conv-live") == []  # waited for the live one, claimed none
        await finishing
    finally:
        for turns in (live, other):
            await turns.close()


async def test_a_turn_the_dead_replica_had_stored_is_not_handled_twice_but_its_answer_arrives(
    replicas,  # noqa: F811
    channel_db,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = issue_login_token(channel_db[0], 600)
    stored: list[Any] = []

    async def save(message: Any) -> None:  # Rasa answered and saved, then the process died
        stored.append(UserUttered(message.text, message_id=message.message_id))
        stored.append(
            BotUttered("It is cancelled.", {"buttons": [{"title": "OK", "payload": "/affirm"}]})
        )

    monkeypatch.setattr(replicas.b.agent, "tracker_store", _tracker_store(stored), raising=False)
    dies = _Dies(before=save)
    try:
        ticket = await _killed_mid_turn(replicas, monkeypatch, "cancel it", token, dies)
        back = await replicas.client(replicas.b)
        assert await back.request_session(ticket, token) == ticket
        # not handled again, but its stored answer (stuck in the dead replica) is sent again
        assert (await back.reply())["text"] == "It is cancelled."
        await back.say("thanks", token)  # handled after the replay decision (the socket's lock)
        assert (await back.reply())["text"] == "You said: thanks"
        assert [m.text for m in replicas.b.agent.messages] == ["thanks"]
    finally:
        dies.released.set()


async def test_answers_still_in_a_killed_replica_s_send_queue_are_sent_again_elsewhere(
    replicas,  # noqa: F811
    channel_db,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The turn is stored and answered, but the answer still waits in replica A's engine.io
    queue for the socket's next poll when A is killed. The turn stays written down until the
    socket took its answers, so the shopper coming back on B gets them from the stored turn."""
    monkeypatch.setattr(webchat, "_PICKUP_SECONDS", 8.0)
    token = issue_login_token(channel_db[0], 600)
    shopper = await _on_a_with_a_reply(replicas, token)
    stored: list[Any] = []

    async def answer_and_store(message: Any) -> None:
        await message.output_channel.send_text_message(message.sender_id, "It is cancelled.")
        stored.append(UserUttered(message.text, message_id=message.message_id))
        stored.append(BotUttered("It is cancelled."))

    monkeypatch.setattr(replicas.a.agent, "handle_message", answer_and_store)
    monkeypatch.setattr(replicas.b.agent, "tracker_store", _tracker_store(stored), raising=False)
    sio_a = replicas.a.channel.sio
    eio_sid = sio_a.manager.eio_sid_from_sid(shopper.sio.get_sid(), "/")
    stuck = asyncio.Queue()  # the socket's next poll never comes: what is queued stays there
    sio_a.eio.sockets[eio_sid].queue = stuck

    await shopper.say("cancel it", token)
    for _ in range(100):
        if stored and not stuck.empty():
            break
        await asyncio.sleep(0.05)
    assert stored and not stuck.empty(), "the answer never reached A's send queue"
    turns = replicas.a.channel.turns
    assert isinstance(turns, RedisTurns)
    turns.stop_renewing()  # killed, its send queue with it
    ticket = shopper.session_id

    back = await replicas.client(replicas.b)
    assert await back.request_session(ticket, token) == ticket
    assert (await back.reply())["text"] == "It is cancelled."
    assert replicas.b.agent.messages == []  # not handled a second time


def test_a_record_holds_neither_the_words_nor_a_token_and_bad_records_are_dropped() -> None:
    words = "my card is 4111 1111 1111 1111, call me on +44 20 7946 0958"
    turn = seal_turn("conv", words)
    assert Turn.from_json(turn.to_json()) == turn
    assert open_turn(turn) == words
    record = turn.to_json()
    assert "4111" not in record and "7946" not in record and "token" not in record
    moved = Turn(
        "other-conv", turn.sealed, turn.sender, turn.turn_id
    )  # a record copied to another chat
    assert open_turn(moved) is None
    for bad in (b"not json", b"{}", b'{"conversation_id": "c"}', b"[1, 2]"):
        assert Turn.from_json(bad) is None


async def test_a_message_cut_off_during_its_checks_is_checked_again_when_replayed(
    replicas,  # noqa: F811
    channel_db,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A typed internal command that A died checking is refused by B, not handed to Rasa."""
    token = issue_login_token(channel_db[0], 600)
    shopper = await _on_a_with_a_reply(replicas, token)
    checking, released = asyncio.Event(), asyncio.Event()

    async def dies_while_checking(*_args: Any) -> None:
        checking.set()
        await released.wait()

    monkeypatch.setattr(replicas.a.channel.guard, "check_message", dies_while_checking)
    try:
        await shopper.say('/EXTERNAL_card_saved{"card_last4": "4242"}', token)
        await asyncio.wait_for(checking.wait(), 10)
        replicas.a.channel.turns.stop_renewing()
        ticket = shopper.session_id
        await shopper.close()

        back = await replicas.client(replicas.b)
        assert await back.request_session(ticket, token) == ticket
        assert (await back.reply())["text"] == replies.COMMAND_REFUSED
        assert replicas.b.agent.messages == []
    finally:
        released.set()


@pytest.mark.parametrize("who", ["the sender", "someone else"])
async def test_a_first_message_cut_off_is_replayed_only_for_its_sender(
    replicas,  # noqa: F811
    channel_db,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    who: str,
) -> None:
    """A died before the first message claimed the session: only its token counts then."""
    token = issue_login_token(channel_db[0], 600)
    presented = token if who == "the sender" else issue_login_token(channel_db[1], 600)
    checking, released = asyncio.Event(), asyncio.Event()

    async def dies_before_the_claim(*_args: Any) -> None:
        checking.set()
        await released.wait()

    try:
        first = await replicas.client(replicas.a)
        ticket = await first.request_session()
        monkeypatch.setattr(replicas.a.channel, "_ip_refusal", dies_before_the_claim)
        await first.say("my first words", token)
        await asyncio.wait_for(checking.wait(), 10)
        replicas.a.channel.turns.stop_renewing()
        await first.close()

        back = await replicas.client(replicas.b)
        assert await back.request_session(ticket, presented) == ticket
        await back.say("and then", presented)
        texts = [(await back.reply())["text"] for _ in range(2 if who == "the sender" else 1)]
        if who == "the sender":
            assert texts == ["You said: my first words", "You said: and then"]
        else:  # the other account continues the unclaimed ticket, without the first words
            assert texts == ["You said: and then"]
        assert await back.pending_replies(replicas.b.channel.sio) == []
    finally:
        released.set()


async def test_a_message_the_vault_cannot_seal_is_refused_not_recorded_in_clear(
    replicas,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: Any) -> Any:
        raise RuntimeError("the vault key file is unreadable")

    monkeypatch.setattr(webchat, "seal_turn", broken)
    shopper = await replicas.client(replicas.a)
    await shopper.request_session()
    await shopper.say("my card is 4111 1111 1111 1111")
    assert (await shopper.reply())["text"] == replies.UNAVAILABLE
    assert replicas.a.agent.messages == []


# --- receipts: what the widget sends again, and what a copy must not do twice ---------------


async def test_a_named_message_gets_its_receipt_ahead_of_its_answer(
    replicas,  # noqa: F811
    channel_db,  # noqa: F811
) -> None:
    token = issue_login_token(channel_db[0], 600)
    shopper = await _on_a_with_a_reply(replicas, token)
    receipts_at_answer: list[list[str]] = []
    shopper.sio.on(
        "bot_uttered",
        lambda data: (
            receipts_at_answer.append(list(shopper.receipts)),
            shopper.replies.put_nowait(data),
        ),
    )
    await shopper.say("where is my parcel?", token, message_id="msg-0001-parcel")
    assert (await shopper.reply())["text"] == "You said: where is my parcel?"
    assert receipts_at_answer == [["msg-0001-parcel"]]  # the receipt came first
    await shopper.say("no id here", token)  # an unnamed message: answered, no receipt
    assert (await shopper.reply())["text"] == "You said: no id here"
    assert shopper.receipts == ["msg-0001-parcel"]


async def test_a_message_its_replica_never_wrote_down_is_answered_when_sent_again(
    replicas,  # noqa: F811
    channel_db,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Replica A dies with the message in hand before writing it down: no record, no receipt,
    so nothing replays it; the widget's copy, sent again on B, is the shopper's answer."""
    token = issue_login_token(channel_db[0], 600)
    shopper = await _on_a_with_a_reply(replicas, token)
    taken, released = asyncio.Event(), asyncio.Event()

    async def dies_before_writing(_turn: Any) -> None:
        taken.set()
        await released.wait()

    monkeypatch.setattr(replicas.a.channel.turns, "begin", dies_before_writing)
    try:
        await shopper.say("where is my parcel?", token, message_id="msg-0002-parcel")
        await asyncio.wait_for(taken.wait(), 10)
        assert shopper.receipts == []  # the widget keeps its copy
        ticket = shopper.session_id
        await shopper.close()

        back = await replicas.client(replicas.b)
        assert await back.request_session(ticket, token) == ticket
        await back.say("where is my parcel?", token, message_id="msg-0002-parcel", resent=True)
        assert (await back.reply())["text"] == "You said: where is my parcel?"
        assert back.receipts == ["msg-0002-parcel"]
        assert [m.text for m in replicas.b.agent.messages] == ["where is my parcel?"]
    finally:
        released.set()


async def test_a_copy_of_a_message_already_stored_is_not_answered_again(
    replicas,  # noqa: F811
    channel_db,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A answered and stored the turn, but its receipt never reached the widget (the socket
    dropped): the copy the widget sends on B gets a receipt, not a second turn."""
    token = issue_login_token(channel_db[0], 600)
    shopper = await _on_a_with_a_reply(replicas, token)
    await shopper.say("cancel it", token, message_id="msg-0003-cancel")
    assert (await shopper.reply())["text"] == "You said: cancel it"
    answered = replicas.a.agent.messages[-1]
    stored = [UserUttered(answered.text, message_id=answered.message_id), BotUttered("You said")]
    monkeypatch.setattr(
        replicas.b.agent,
        "tracker_store",
        _tracker_store(stored),
        raising=False,
    )
    ticket = shopper.session_id
    await shopper.close()

    back = await replicas.client(replicas.b)
    assert await back.request_session(ticket, token) == ticket
    await back.say("cancel it", token, message_id="msg-0003-cancel", resent=True)
    await back.say("thanks", token, message_id="msg-0004-thanks")
    assert (await back.reply())["text"] == "You said: thanks"  # and nothing before it
    assert back.receipts == ["msg-0003-cancel", "msg-0004-thanks"]
    assert [m.text for m in replicas.b.agent.messages] == ["thanks"]


async def test_a_copy_of_a_message_its_live_replica_is_answering_is_not_answered_twice(
    replicas,  # noqa: F811
    channel_db,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The socket moved to B while A (alive) still answers: the copy finds the turn written
    down and leaves it to A, whose answer reaches the socket on B through the room."""
    token = issue_login_token(channel_db[0], 600)
    shopper = await _on_a_with_a_reply(replicas, token)
    slow = _Dies()
    monkeypatch.setattr(replicas.a.agent, "handle_message", slow.handle_message)
    try:
        await shopper.say("where is my parcel?", token, message_id="msg-0005-parcel")
        await asyncio.wait_for(slow.started.wait(), 10)
        ticket = shopper.session_id
        await shopper.close()  # the receipt went with the socket, unread

        back = await replicas.client(replicas.b)
        assert await back.request_session(ticket, token) == ticket
        await back.say("where is my parcel?", token, message_id="msg-0005-parcel", resent=True)
        for _ in range(100):
            if back.receipts:
                break
            await asyncio.sleep(0.05)
        assert back.receipts == ["msg-0005-parcel"]
        assert replicas.b.agent.messages == []
        assert await back.pending_replies(replicas.b.channel.sio) == []
    finally:
        slow.released.set()


def test_a_copy_names_the_same_turn_only_within_its_own_conversation() -> None:
    assert inflight.turn_id_for("conv-1", "msg-0006-x") == inflight.turn_id_for(
        "conv-1", "msg-0006-x"
    )
    assert inflight.turn_id_for("conv-1", "msg-0006-x") != inflight.turn_id_for(
        "conv-2", "msg-0006-x"
    )
