"""Load and fault scenarios shared by ``tests/scale`` (light) and ``bench/soak.py`` (full).

Every fault is pulled on the stack's *own* services (:class:`bench.services.OwnServices`) or
its own TCP proxies, never on the machine's shared ones, and always undone before the fault
coroutine returns (``finally``):

* :func:`postgres_restart` - the stack's PostgreSQL restarts (refused connections for a moment);
* :func:`broker_outage` - RabbitMQ's application stops for a while, optionally with a replica
  SIGKILLed in the middle of it (``kill_replica``);
* :func:`blackhole` - one replica's path to PostgreSQL goes silent, then heals.

The measurements: :func:`load` (conversations through the balancer or the replicas),
:func:`confirmations` (secure-form results reported by the web service through the balancer,
and whether each reached the shopper, on whatever replica), :func:`broker_delivery` (stored
events against what reached the queue: lost, doubled, out of order).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from bench import checks, driver, forms
from bench import services as svc

Fault = Callable[[], Awaitable[None]]


@dataclass
class Plan:
    """Scripts, login tokens and calibrated reply counts for one stack."""

    scripts: list[tuple[int, list[str]]]
    tokens: dict[int, str]
    counts: driver.Counts


async def make_plan(stack: Any, conversations: int, *, personal: bool = False) -> Plan:
    scripts, tokens = driver.plan(
        stack.shop_database_url, stack.keys_file, conversations, personal=personal
    )
    counts = await driver.calibrate_all(
        stack.rasa_urls[0], tokens, scripts, stock=stack.config.flavour == "stock"
    )
    return Plan(scripts, tokens, counts)


# ------------------------------------------------------------------------------ faults


@dataclass
class FaultLog:
    """When a fault started and ended (monotonic seconds), and what happened meanwhile."""

    started: float = 0.0
    in_effect: float = 0.0  # when the fault had taken hold (e.g. RabbitMQ had stopped)
    ended: float = 0.0
    notes: list[str] = field(default_factory=list)


def postgres_restart(stack: Any, after: float, log: FaultLog | None = None) -> Fault:
    """Restart the stack's own PostgreSQL ``after`` seconds into the run."""
    log = log or FaultLog()

    async def fault() -> None:
        await asyncio.sleep(after)
        log.started = time.monotonic()
        await asyncio.to_thread(stack.own.postgres.restart)
        log.ended = time.monotonic()

    return fault


def broker_outage(
    stack: Any,
    after: float,
    seconds: float,
    *,
    kill_replica: int | None = None,
    kill_after: float = 0.0,
    log: FaultLog | None = None,
) -> Fault:
    """Stop the stack's RabbitMQ for ``seconds``; optionally SIGKILL a replica meanwhile."""
    log = log or FaultLog()
    rabbit = stack.own.rabbitmq

    async def fault() -> None:
        await asyncio.sleep(after)
        log.started = time.monotonic()
        try:
            await asyncio.to_thread(rabbit.ctl, "stop_app")
            log.in_effect = time.monotonic()
            if kill_replica is not None:
                await asyncio.sleep(kill_after)
                await asyncio.to_thread(stack.kill_replica, kill_replica)
                log.notes.append(
                    f"replica {kill_replica} SIGKILLed {time.monotonic() - log.started:.0f} s "
                    "into the outage"
                )
            await asyncio.sleep(max(0.0, seconds - (time.monotonic() - log.started)))
        finally:
            await asyncio.to_thread(rabbit.ctl, "start_app")
            await asyncio.to_thread(svc.wait_for_rabbitmq, stack.services)
            log.ended = time.monotonic()

    return fault


def blackhole(
    stack: Any, replica: int, after: float, seconds: float, log: FaultLog | None = None
) -> Fault:
    """Replica ``replica``'s path to PostgreSQL goes silent for ``seconds``, then heals."""
    log = log or FaultLog()
    proxy = stack.proxies[replica]

    async def fault() -> None:
        await asyncio.sleep(after)
        log.started = time.monotonic()
        proxy.blackhole()
        try:
            await asyncio.sleep(seconds)
        finally:
            proxy.heal()
            log.ended = time.monotonic()

    return fault


# ------------------------------------------------------------------------------ load


async def load(
    stack: Any,
    plan: Plan,
    count: int,
    concurrency: int,
    fault: Fault | None = None,
    offset: int = 0,
    *,
    switch_replicas: bool = True,
    reply_timeout: float = driver.REPLY_TIMEOUT,
    await_replays: bool = False,
) -> driver.LoadResult:
    """Play ``count`` of the plan's scripts (from ``offset``), with ``fault`` running alongside."""
    scripts = [plan.scripts[(offset + i) % len(plan.scripts)] for i in range(count)]
    run = driver.run_load(
        stack.rasa_urls,
        plan.tokens,
        scripts,
        plan.counts,
        concurrency=concurrency,
        switch_replicas=switch_replicas,
        first_address=offset,
        reply_timeout=reply_timeout,
        await_replays=await_replays,
    )
    if fault is None:
        return await run
    result, _ = await asyncio.gather(run, fault())
    return result


def played(result: driver.LoadResult) -> list[tuple[str, list[str], str | None]]:
    """(sender id, lines that got their replies, the line in flight when it stopped or None)."""
    out = []
    for c in result.conversations:
        if not c.conversation_id:
            continue
        done = len(c.latencies)
        in_flight = c.texts[done] if c.error and done < len(c.texts) else None
        out.append((c.conversation_id, c.texts[:done], in_flight))
    return out


def latencies_between(result: driver.LoadResult, start: float, end: float) -> list[float]:
    """Turn latencies of turns that ended inside [start, end] (monotonic clock)."""
    return sorted(
        seconds
        for c in result.conversations
        for seconds, at in zip(c.latencies, c.finished_at, strict=False)
        if start <= at <= end
    )


# ------------------------------------------------------------------------------ confirmations


@dataclass
class Confirmations:
    """Secure-form results reported by the web service: did each reach its shopper?"""

    submitted: int
    seen: int
    crossed: int  # trigger_intent served by another replica than the one holding the socket
    seconds: list[float]  # form posted -> confirmation seen by the shopper
    errors: list[str]

    @property
    def lost(self) -> int:
        return self.submitted - self.seen


_TRIGGER = re.compile(r"^/conversations/([^/]+)/trigger_intent")


async def confirmations(
    stack: Any,
    plan: Plan,
    count: int,
    *,
    offset: int = 0,
    rounds: int = 1,
    concurrency: int = 8,
    sequential: bool = False,
) -> Confirmations:
    """``count`` shoppers through the balancer, each told ``rounds`` times that a form was saved.

    Each shopper opens a conversation (three lines, so an action has seen its login), then
    a delivery-address link is issued for it and submitted to the web service like a browser
    would; the shopper must hear the confirmation (it names the order) on its socket, whichever
    replica the web service's ``trigger_intent`` reached (read from HAProxy's log).

    ``sequential``: each shopper's ``rounds`` forms are submitted back to back, alone; the
    balancer's round robin then sends consecutive ``trigger_intent`` calls to different
    replicas, so at least one per shopper is served by the replica not holding its socket.
    """
    scripts = [plan.scripts[(offset + i) % len(plan.scripts)] for i in range(count)]
    shoppers: list[driver.Shopper] = []
    errors: list[str] = []
    gate = asyncio.Semaphore(concurrency)

    async def start(i: int, customer_id: int, texts: list[str]) -> None:
        shopper = driver.Shopper(False, driver.shopper_address(10_000 + offset + i))
        shoppers[i] = shopper
        async with gate:
            await shopper.connect(stack.rasa_urls[0])
            await shopper.open_session(plan.tokens[customer_id])
            counts = driver.counts_for(plan.counts, texts)
            for line, expected in zip(texts[:3], counts[:3], strict=True):
                await shopper.say(line, plan.tokens[customer_id], expected)

    shoppers = [driver.Shopper(False)] * len(scripts)
    try:
        await asyncio.gather(*(start(i, cid, t) for i, (cid, t) in enumerate(scripts)))
        socket_replica = {s.conversation_id: s.replica for s in shoppers}
        pairs = [(cid, s.conversation_id) for (cid, _), s in zip(scripts, shoppers, strict=True)]
        links = await asyncio.to_thread(forms.issue_address_links, stack, pairs * rounds)
        seconds: list[float] = []

        async def one(shopper: driver.Shopper, link: forms.IssuedLink) -> None:
            began = time.perf_counter()
            response = await asyncio.to_thread(forms.submit, stack.web_url, link)
            if response.status_code != 200:
                errors.append(f"form answered HTTP {response.status_code}")
                return
            deadline = time.perf_counter() + driver.REPLY_TIMEOUT
            while time.perf_counter() < deadline:
                try:
                    reply = await asyncio.wait_for(
                        shopper.replies.get(), deadline - time.perf_counter()
                    )
                except asyncio.TimeoutError:
                    break
                if link.order_id in driver._text(reply):  # "... order CG-1 ... address"
                    seconds.append(time.perf_counter() - began)
                    return
            errors.append(f"no confirmation for {link.conversation_id[:8]}")

        if sequential:  # one shopper's confirmations back to back: consecutive requests
            for index, shopper in enumerate(shoppers):
                for link in links[index :: len(shoppers)]:
                    await one(shopper, link)
        else:
            for r in range(rounds):
                batch = links[r * len(shoppers) : (r + 1) * len(shoppers)]
                await asyncio.gather(*(one(s, k) for s, k in zip(shoppers, batch, strict=True)))
        submitted, seen = len(links), len(seconds)
        await asyncio.sleep(0.5)  # HAProxy writes its log line when the request ends
        crossed = 0
        for route in stack.balancer.routes():
            match = _TRIGGER.match(route.path)
            if route.frontend == "internal" and match:
                holder = socket_replica.get(match.group(1))
                served = int(route.server.removeprefix("rasa")) - 1
                crossed += holder is not None and served != holder
        return Confirmations(submitted, seen, crossed, sorted(seconds), errors)
    finally:
        for shopper in shoppers:
            try:
                await shopper.close()
            except Exception:  # noqa: S110 - closing a dead connection is not the failure
                pass


# ------------------------------------------------------------------------------ broker


@dataclass
class Delivery:
    """How the stored events of some conversations showed up on the event queue."""

    stored: int
    published: int  # messages of these conversations taken from the queue
    lost: int  # stored, never queued
    duplicates: int  # queued more than once (same message id)
    unknown: int  # queued, never stored
    out_of_order: int  # conversations whose queued events are not in stored order
    differing_copies: int = 0  # same message id, different body (must never happen)
    #: per conversation out of order: (sender id, stored event types, published event types)
    disorder: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    #: of ``lost``: still unsent in the outbox table when the wait ended (late, not gone)
    pending: int = 0
    seconds: float = 0.0  # from the call until every stored event had arrived (or timeout)


async def broker_delivery(
    stack: Any, sender_ids: Sequence[str], timeout: float = 120.0
) -> Delivery:
    """Drain the queue until every stored event of ``sender_ids`` arrived, or ``timeout``."""
    stored = checks.load_events(stack.tracker_database_url, sender_ids)
    expected = {
        sid: [json.dumps({"sender_id": sid, **e}, sort_keys=True) for e in conv.events]
        for sid, conv in stored.items()
    }
    total = sum(len(v) for v in expected.values())
    arrived: dict[str, list[tuple[str | None, str]]] = defaultdict(list)
    began = time.monotonic()
    deadline = began + timeout
    while True:
        for body, message_id in await asyncio.to_thread(
            svc.drain_queue_with_ids, stack.config.queue, stack.services
        ):
            event = json.loads(body)
            sid = event.get("sender_id")
            if sid in expected:
                arrived[sid].append((message_id, json.dumps(event, sort_keys=True)))
        got = sum(len({mid for mid, _ in v}) for v in arrived.values())
        if got >= total or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)
    seconds = time.monotonic() - began
    lost = duplicates = unknown = out_of_order = published = differing = 0
    disorder: list[tuple[str, list[str], list[str]]] = []
    for sid, events in expected.items():
        messages = arrived.get(sid, [])
        published += len(messages)
        ids = Counter(mid for mid, _ in messages)
        duplicates += sum(n - 1 for n in ids.values() if n > 1)
        first_copy: list[str] = []
        body_of: dict[str | None, str] = {}
        for mid, body in messages:
            if mid not in body_of or mid is None:
                body_of[mid] = body
                first_copy.append(body)
            elif body_of[mid] != body:
                differing += 1
        missing = Counter(events) - Counter(first_copy)
        extra = Counter(first_copy) - Counter(events)
        lost += sum(missing.values())
        unknown += sum(extra.values())
        if not missing and not extra and first_copy != events:
            out_of_order += 1
            disorder.append((sid, _kinds(events), _kinds(first_copy)))
    pending = await asyncio.to_thread(_unsent_in_outbox, stack.tracker_database_url, sender_ids)
    return Delivery(
        total,
        published,
        lost,
        duplicates,
        unknown,
        out_of_order,
        differing,
        disorder,
        pending=min(pending, lost),
        seconds=seconds,
    )


def _unsent_in_outbox(database_url: str, sender_ids: Sequence[str]) -> int:
    """Outbox rows of ``sender_ids`` no relay has sent yet."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM event_outbox WHERE sent_at IS NULL "
                        "AND sender_id IN :ids"
                    ).bindparams(sa.bindparam("ids", expanding=True)),
                    {"ids": list(sender_ids)},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def where_they_differ(stored: Sequence[str], published: Sequence[str], around: int = 3) -> str:
    """The first position where two event sequences part, with a few events either side."""
    at = next(
        (i for i, (a, b) in enumerate(zip(stored, published, strict=False)) if a != b),
        min(len(stored), len(published)),
    )
    lo = max(0, at - around)
    return (
        f"event {at} of {len(stored)}: stored {list(stored[lo : at + around])} "
        f"vs published {list(published[lo : at + around])}"
    )


def _kinds(bodies: Sequence[str]) -> list[str]:
    """Each event's type and name or text, for showing how two sequences differ."""
    kinds = []
    for body in bodies:
        event = json.loads(body)
        kinds.append(f"{event.get('event')}:{event.get('name') or event.get('text') or ''}")
    return kinds


def percentile(values: Sequence[float], pct: float) -> float:
    return driver.percentile(sorted(values), pct)
