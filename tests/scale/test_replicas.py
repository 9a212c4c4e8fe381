"""Two Rasa replicas behind HAProxy, under load and while their services fail.

The light variant of ``make soak`` (bench/soak.py): a few dozen conversations per scenario,
short faults, all on the stack's own PostgreSQL, Redis and RabbitMQ. In order:

1. conversations through the balancer, moving replica half-way;
2. secure-form confirmations from the web service routed through the other replica;
3. a shopper moving replica, a step-up code verified on the other replica, two tabs on two
   replicas typing at once;
4. PostgreSQL restarted mid-run;
5. one replica's path to PostgreSQL blackholed: it answers "try again", the other serves;
6. RabbitMQ stopped, a replica SIGKILLed during the outage: every stored event reaches the
   queue once, in order, and the turns the kill cut off are answered on the other replica
   once their shoppers come back (last: the killed replica stays down).
"""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from bench import checks, scenarios
from bench.driver import Refused, RepliesMissing, Shopper
from cartguard.channels import replies

pytestmark = [pytest.mark.services, pytest.mark.slow]


#: what the kill test found on the queue, for the order test after it
_AFTER_THE_KILL: dict[str, scenarios.Delivery] = {}


def _explained(stack, result) -> str:
    """What a failed run's conversations went through, and what the processes logged as errors."""
    lines = [
        f"{c.conversation_id}: {c.error} (turns {len(c.latencies)}, replicas {c.replicas}, "
        f"reconnects {c.reconnects}, refusals {c.refusals}, heard {c.heard})"
        for c in result.conversations
        if c.error or c.replies_lost
    ]
    for log in sorted(stack.logs.glob("*.log")):
        text = log.read_text(errors="replace").splitlines()
        lines += [f"{log.name}: {line[:300]}" for line in text if " ERROR " in line][-15:]
    return "\n".join(lines)


async def test_conversations_through_the_balancer_lose_double_and_reorder_nothing(
    stack, plan
) -> None:
    result = await scenarios.load(stack, plan, count=16, concurrency=8)

    assert result.errors == []
    assert result.replies_lost == 0
    assert {r for c in result.conversations for r in c.replicas} == {0, 1}  # both replicas
    assert checks.check_conversations(stack.tracker_database_url, scenarios.played(result)) == {}


async def test_a_form_confirmation_reaches_the_shopper_whichever_replica_the_web_service_hits(
    stack, plan
) -> None:
    # two confirmations per shopper, back to back: the internal frontend's round robin sends
    # them to different replicas, so one of each pair is served by the replica that does not
    # hold the shopper's socket (main, without the Redis client manager, lost exactly those)
    result = await scenarios.confirmations(
        stack, plan, count=3, offset=4, rounds=2, sequential=True
    )

    assert result.errors == []
    assert result.submitted == 6
    assert result.crossed >= 3
    assert result.lost == 0


async def test_a_shopper_reconnecting_to_the_other_replica_continues_the_same_conversation(
    stack, plan
) -> None:
    urls = stack.replica_urls
    (customer, script), (other_customer, _) = plan.scripts[1], plan.scripts[2]
    token, counts = plan.tokens[customer], plan.counts["plain"]
    assert other_customer != customer
    first = Shopper(stock=False)
    await first.connect(urls[0])
    session = await first.open_session(token)
    for line, expected in zip(script[:2], counts[:2], strict=True):
        await first.say(line, token, expected)
    await first.close()

    second = Shopper(stock=False)
    second.session_id = session
    await second.connect(urls[1])
    try:
        assert await second.open_session(token) == session
        _, answer = await second.say(script[2], token, counts[2])
    finally:
        await second.close()
    order_id = script[2].rsplit(" ", 1)[-1]
    assert order_id in answer[0]  # replica 1 knew who this is and answered about the order

    stranger = Shopper(stock=False)
    stranger.session_id = session  # a copied ticket, but another account's login
    await stranger.connect(urls[1])
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
    urls = stack.replica_urls
    customer, _ = plan.scripts[3]
    token = plan.tokens[customer]
    first = Shopper(stock=False)
    await first.connect(urls[0])
    session = await first.open_session(token)
    try:
        for line in ("hello there", "yes"):
            await first.ask(line, token)
        asked = await first.ask("what is my store credit balance", token)
    finally:
        await first.close()
    assert any("6-digit code" in text for text in asked), asked

    services = stack.services
    limits = redis.Redis(
        host=services.redis_host, port=services.redis_port, db=stack.config.redis_db + 1
    )
    try:
        assert limits.exists(f"cartguard:rl:socketio:sender:{first.conversation_id}")
    finally:
        limits.close()

    second = Shopper(stock=False)
    second.session_id = session
    await second.connect(urls[1])
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
    urls = stack.replica_urls
    customer, script = plan.scripts[5]
    token, counts = plan.tokens[customer], plan.counts["plain"]
    a, b = Shopper(stock=False), Shopper(stock=False)
    await a.connect(urls[0])
    session = await a.open_session(token)
    await a.say(script[0], token, counts[0])
    b.session_id = session
    await b.connect(urls[1])
    try:
        assert await b.open_session(token) == session
        # the same shopper in two tabs, each on its own replica, typing at the same moment;
        # with the Redis fan-out each tab hears the replies of both turns
        both = counts[2] + counts[3]
        await asyncio.gather(a.say(script[2], token, 0), b.say(script[3], token, 0))
        heard = await asyncio.gather(
            *(asyncio.wait_for(tab.replies.get(), 60) for tab in (a, b) for _ in range(both))
        )
    finally:
        await a.close()
        await b.close()
    assert len(heard) == 2 * both

    def intact(order: list[str]) -> bool:
        found = checks.check_conversations(
            stack.tracker_database_url, [(a.conversation_id, order)], settle=10
        )
        return found == {}

    assert intact([script[0], script[2], script[3]]) or intact([script[0], script[3], script[2]])


async def test_a_database_restart_mid_run_gives_clear_errors_and_loses_nothing(stack, plan) -> None:
    """Clear errors only, nothing damaged or lost in the store, replies lost only mid-restart.

    Not "no reply lost": in about one run of two on a busy machine (clean-clone and CI runs,
    and a local run of the whole module), one turn under way while PostgreSQL restarted got
    one answer of two; the cause is not found yet (docs/benchmarks.md). What this test holds
    to is that such a loss is confined to turns the restart caught, that nothing stored is
    damaged, and that every other conversation completes; the soak counts the losses.
    """
    restart = scenarios.FaultLog()
    result = await scenarios.load(
        stack,
        plan,
        count=10,
        concurrency=5,
        fault=scenarios.postgres_restart(stack, after=1.5, log=restart),
        # a turn caught by the restart waits for the database (the store's 20 s grace, the
        # actions' retries); on a busy machine that has taken over 60 s: late is not lost
        reply_timeout=150,
    )

    assert restart.ended > restart.started > 0
    failed = [c for c in result.conversations if c.error]
    caught = [
        c
        for c in failed
        if c.error.startswith("RepliesMissing")
        and c.error_turn_began is not None
        and c.error_turn_began <= restart.ended + 5
    ]
    assert failed == caught, _explained(stack, result)
    # while it was down, shoppers got the channel's plain "try again" answer, then it worked
    refusals = {text for c in result.conversations for text in c.refusals}
    assert refusals <= {replies.UNAVAILABLE}
    assert checks.check_conversations(stack.tracker_database_url, scenarios.played(result)) == {}


async def test_a_replica_whose_database_path_goes_silent_says_try_again_while_the_other_serves(
    stack, plan
) -> None:
    window = scenarios.FaultLog()
    # a shopper on the silent replica who speaks once the silence began (the balancer's
    # shoppers may all be between turns then, or waiting on a save that the heal completes)
    customer, script = plan.scripts[6]
    token = plan.tokens[customer]
    probe = Shopper(stock=False)
    await probe.connect(stack.replica_urls[0])
    await probe.open_session(token)

    async def speak_to_the_silent_replica() -> float:
        while not window.started:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        began = time.monotonic()
        with pytest.raises(Refused) as refused:
            await probe.say(script[0], token, plan.counts["plain"][0])
        assert str(refused.value) == replies.UNAVAILABLE
        return time.monotonic() - began

    try:
        result, waited = await asyncio.gather(
            scenarios.load(
                stack,
                plan,
                count=12,
                concurrency=6,
                offset=12,
                fault=scenarios.blackhole(stack, replica=0, after=2.0, seconds=12, log=window),
            ),
            speak_to_the_silent_replica(),
        )
    finally:
        await probe.close()

    assert result.errors == []
    refusing = {r for c in result.conversations for r in c.refusal_replicas}
    assert refusing <= {0}, "only the blackholed replica may refuse"
    assert waited < 12, f"'try again' came after {waited:.1f} s, not before the database healed"
    served_meanwhile = [
        r
        for c in result.conversations
        for r, at in zip(c.replicas, c.finished_at, strict=True)
        if window.started < at < window.ended
    ]
    assert 1 in served_meanwhile  # the other replica kept answering during the blackhole
    assert checks.check_conversations(stack.tracker_database_url, scenarios.played(result)) == {}


async def test_a_replica_killed_during_a_broker_outage_loses_no_stored_event_and_no_reply(
    stack, plan
) -> None:
    """Last: replica 1 stays dead afterwards.

    Replica 1 is killed at the moment a pinned shopper's turn is in flight there (its record
    in Redis, no answer yet), while RabbitMQ is down and other shoppers talk through the
    balancer. The pinned shopper comes back on replica 0 and gets the answer without asking
    again; so do the balancer's shoppers cut off by the kill.
    """
    await asyncio.to_thread(scenarios.svc.drain_queue, stack.config.queue, stack.services)
    customer, script = plan.scripts[5]
    token, expected = plan.tokens[customer], plan.counts["plain"][0]
    pinned = Shopper(stock=False, reply_timeout=150)
    await pinned.connect(stack.replica_urls[1])
    session = await pinned.open_session(token)
    in_flight = f"cartguard:webchat:turns:{pinned.conversation_id}"
    turns = redis.Redis.from_url(f"{stack.services.redis_url}/{stack.config.redis_db + 2}")
    outage = scenarios.FaultLog()

    def kill_once_in_flight() -> bool:
        deadline = time.monotonic() + 30
        while not turns.exists(in_flight) and time.monotonic() < deadline:
            time.sleep(0.001)
        stack.kill_replica(1)
        return bool(turns.exists(in_flight))  # still unanswered when its replica died

    async def cut_a_turn() -> bool:
        while not outage.in_effect:  # RabbitMQ has stopped (its CLI takes a few seconds)
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        saying = asyncio.create_task(pinned.say(script[0], token, expected))
        cut = await asyncio.to_thread(kill_once_in_flight)
        with pytest.raises(RepliesMissing):
            await saying
        return cut

    try:
        result, cut = await asyncio.gather(
            scenarios.load(
                stack,
                plan,
                count=10,
                concurrency=5,
                offset=24,
                fault=scenarios.broker_outage(stack, after=2.0, seconds=10, log=outage),
                # a turn cut off by the kill is replayed on the other replica once the dead
                # one's leases (turn record 20 s, conversation lock 15 s) have lapsed
                reply_timeout=150,
                await_replays=True,
            ),
            cut_a_turn(),
        )
        assert cut, "the turn ended before the kill: nothing was cut off"
        await pinned.connect(stack.replica_urls[0])  # the widget reconnects elsewhere
        assert await pinned.open_session(token) == session
        replayed = await pinned.collect(expected, 150)
    finally:
        await pinned.close()
        turns.close()
    assert len(replayed) == expected, replayed  # answered without being asked again
    # the answers are sent during the turn, the tracker is stored at its end
    deadline = time.monotonic() + 30
    while True:
        stored = checks.load_events(stack.tracker_database_url, [pinned.conversation_id])
        found = stored.get(pinned.conversation_id)
        texts = found.user_texts if found else []
        if texts or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert texts == [script[0]]  # once, not twice
    # the balancer's shoppers: none failed, and replies went missing only for shoppers the
    # kill cut off. Not asserted 0 here: a poll the dead replica had taken but not yet written
    # to the network is still lost (docs/scaling.md); the soak counts every loss
    assert result.errors == []
    lost_elsewhere = [
        c.conversation_id for c in result.conversations if c.replies_lost and not c.reconnects
    ]
    assert lost_elsewhere == [], lost_elsewhere
    delivery = await scenarios.broker_delivery(
        stack, [sid for sid, *_ in scenarios.played(result)], timeout=90
    )

    assert delivery.stored > 0
    assert delivery.lost == 0, f"{delivery.lost} stored events never reached RabbitMQ"
    assert delivery.unknown == 0  # nothing published that was not stored
    _AFTER_THE_KILL["delivery"] = delivery  # its order: the next test
    # a publish RabbitMQ took just as it stopped, whose confirm never came, is sent again: an
    # identical copy with the same message id, which consumers drop (at most a handful)
    assert delivery.differing_copies == 0
    assert delivery.duplicates <= 5


def test_after_the_kill_every_conversation_reaches_the_queue_in_stored_order() -> None:
    """Per-conversation order across a replica's death, from the kill test's own run.

    Two relays woken together when RabbitMQ comes back used to publish across rows the other
    held (``tests/scale/test_outbox.py``); this check was an expected failure until then.
    """
    delivery = _AFTER_THE_KILL.get("delivery")
    assert delivery is not None, "the kill test did not get as far as the queue"
    assert delivery.out_of_order == 0, [
        (sid, scenarios.where_they_differ(stored, published))
        for sid, stored, published in delivery.disorder
    ]
