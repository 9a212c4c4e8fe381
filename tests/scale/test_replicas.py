"""Two Rasa replicas on PostgreSQL + Redis + RabbitMQ, under load and while services fail.

The light variant of ``make soak`` (bench/soak.py): a few dozen conversations, one short
PostgreSQL restart, one short RabbitMQ stop. PostgreSQL and RabbitMQ are always running
again when a test ends, whatever happened in it.
"""

from __future__ import annotations

import asyncio

import pytest

from bench import checks, scenarios
from bench import services as svc
from bench.driver import Shopper
from cartguard.channels import replies

pytestmark = [pytest.mark.services, pytest.mark.slow]


async def test_concurrent_conversations_across_two_replicas_lose_double_and_reorder_nothing(
    stack, plan
) -> None:
    result = await scenarios.load(stack, plan, count=16, concurrency=8)

    assert result.errors == []
    assert all(set(c.replicas) == {0, 1} for c in result.conversations)  # both replicas
    assert checks.check_conversations(stack.tracker_database_url, scenarios.played(result)) == {}


async def test_a_shopper_reconnecting_to_the_other_replica_continues_the_same_conversation(
    stack, plan
) -> None:
    (customer, script), (other_customer, _) = plan.scripts[0], plan.scripts[1]
    token, counts = plan.tokens[customer], plan.counts
    assert other_customer != customer
    first = Shopper(stock=False)
    await first.connect(stack.rasa_urls[0])
    session = await first.open_session(token)
    for line, expected in zip(script[:2], counts[:2], strict=True):
        await first.say(line, token, expected)
    await first.close()

    second = Shopper(stock=False)
    second.session_id = session
    await second.connect(stack.rasa_urls[1])
    try:
        assert await second.open_session(token) == session
        _, answer = await second.say(script[2], token, counts[2])
    finally:
        await second.close()
    order_id = script[2].rsplit(" ", 1)[-1]
    assert order_id in answer[0]  # replica 1 knew who this is and answered about the order

    stranger = Shopper(stock=False)
    stranger.session_id = session  # a copied ticket, but another account's login
    await stranger.connect(stack.rasa_urls[1])
    try:
        assert await stranger.open_session(plan.tokens[other_customer]) != session
    finally:
        await stranger.close()

    stored = checks.load_events(stack.tracker_database_url, [first.conversation_id])
    assert stored[first.conversation_id].user_texts == script[:3]


async def test_a_code_verified_on_one_replica_unlocks_the_request_asked_on_the_other(
    stack, plan
) -> None:
    """Step-up state lives in PostgreSQL and rate limits in Redis: both replicas share them."""
    import redis

    customer, _ = plan.scripts[3]
    token = plan.tokens[customer]
    first = Shopper(stock=False)
    await first.connect(stack.rasa_urls[0])
    session = await first.open_session(token)
    try:
        for line in ("hello there", "yes"):
            await first.ask(line, token)
        asked = await first.ask("what is my store credit balance", token)
    finally:
        await first.close()
    assert any("6-digit code" in text for text in asked), asked

    limits = redis.Redis(
        host=stack.config.services.redis_host,
        port=stack.config.services.redis_port,
        db=stack.config.redis_db + 1,
    )
    try:
        assert limits.exists(f"cartguard:rl:socketio:sender:{first.conversation_id}")
    finally:
        limits.close()

    second = Shopper(stock=False)
    second.session_id = session
    await second.connect(stack.rasa_urls[1])
    try:
        assert await second.open_session(token) == session
        answer = await second.ask(stack.totp_code(customer), token)
    finally:
        await second.close()
    assert any(
        label in text
        for text in answer
        for label in ("in store credit", "gift card balance", "loyalty points")
    ), answer


async def test_two_replicas_never_interleave_turns_of_one_conversation(stack, plan) -> None:
    customer, script = plan.scripts[2]
    token, counts = plan.tokens[customer], plan.counts
    a, b = Shopper(stock=False), Shopper(stock=False)
    await a.connect(stack.rasa_urls[0])
    session = await a.open_session(token)
    await a.say(script[0], token, counts[0])
    b.session_id = session
    await b.connect(stack.rasa_urls[1])
    try:
        assert await b.open_session(token) == session
        # the same shopper in two tabs, each on its own replica, typing at the same moment;
        # each replica answers the socket connected to it
        await asyncio.gather(a.say(script[2], token, counts[2]), b.say(script[3], token, counts[3]))
    finally:
        await a.close()
        await b.close()

    stored = checks.load_events(stack.tracker_database_url, [a.conversation_id])
    conversation = stored[a.conversation_id]
    either = [
        checks.problems_in(conversation, [script[0], script[2], script[3]]),
        checks.problems_in(conversation, [script[0], script[3], script[2]]),
    ]
    assert [] in either, either


async def test_a_database_restart_mid_run_gives_clear_errors_and_loses_nothing(stack, plan) -> None:
    try:
        result = await scenarios.load(
            stack, plan, count=10, concurrency=5, fault=scenarios.postgres_restart(after=1.5)
        )
    finally:
        svc.ensure_postgres_running()

    assert result.errors == []
    # while it was down, shoppers got the channel's plain "try again" answer, then it worked
    refusals = {text for c in result.conversations for text in c.refusals}
    assert refusals <= {replies.UNAVAILABLE}
    assert checks.check_conversations(stack.tracker_database_url, scenarios.played(result)) == {}
    logs = "".join(p.read_text(errors="replace") for p in stack.logs.glob("*.log"))
    assert "tracker database unavailable" in logs or "shop database is unavailable" in logs


async def test_with_the_broker_down_conversations_go_on_and_every_event_is_delivered(
    stack, plan
) -> None:
    svc.drain_queue(stack.config.queue)
    try:
        result = await scenarios.load(
            stack,
            plan,
            count=10,
            concurrency=5,
            fault=scenarios.broker_outage(after=1.5, seconds=6),
            offset=10,
        )
    finally:
        svc.ensure_rabbitmq_running()

    assert result.errors == []
    played = scenarios.played(result)
    assert checks.check_conversations(stack.tracker_database_url, played) == {}
    delivery = await scenarios.broker_delivery(
        stack.tracker_database_url, stack.config.queue, [sid for sid, _ in played]
    )
    assert delivery.stored > 0
    assert delivery.lost == 0, f"{delivery.lost} stored events never reached RabbitMQ"
    assert delivery.unknown == 0  # at-least-once: a redelivered copy is allowed, a stray is not
