"""Load and fault scenarios shared by ``tests/scale`` (light) and ``bench/soak.py`` (full).

Each fault is a coroutine that runs beside a load run and always leaves the service running
again; the callers still wrap them in ``finally: ensure_*_running()`` in case the load run
itself fails first.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench import checks, driver
from bench import services as svc

Fault = Callable[[], Awaitable[None]]


@dataclass
class Plan:
    """Scripts, login tokens and calibrated reply counts for one stack."""

    scripts: list[tuple[int, list[str]]]
    tokens: dict[int, str]
    counts: list[int]


async def make_plan(stack: Any, conversations: int) -> Plan:
    scripts, tokens = driver.plan(stack.shop_database_url, stack.keys_file, conversations)
    counts = await driver.calibrate(
        stack.rasa_urls[0],
        tokens[scripts[0][0]],
        scripts[0][1],
        stock=stack.config.flavour == "stock",
    )
    return Plan(scripts, tokens, counts)


def postgres_restart(after: float) -> Fault:
    async def fault() -> None:
        await asyncio.sleep(after)
        try:
            await asyncio.to_thread(svc.pg_ctl, "restart")
        finally:
            await asyncio.to_thread(svc.ensure_postgres_running)

    return fault


def broker_outage(after: float, seconds: float) -> Fault:
    async def fault() -> None:
        await asyncio.sleep(after)
        try:
            await asyncio.to_thread(svc.rabbitmqctl, "stop_app")
            await asyncio.sleep(seconds)
        finally:
            await asyncio.to_thread(svc.ensure_rabbitmq_running)

    return fault


async def load(
    stack: Any,
    plan: Plan,
    count: int,
    concurrency: int,
    fault: Fault | None = None,
    offset: int = 0,
) -> driver.LoadResult:
    """Play ``count`` of the plan's scripts (from ``offset``), with ``fault`` running alongside."""
    scripts = [plan.scripts[(offset + i) % len(plan.scripts)] for i in range(count)]
    run = driver.run_load(
        stack.rasa_urls, plan.tokens, scripts, plan.counts, concurrency=concurrency
    )
    if fault is None:
        return await run
    result, _ = await asyncio.gather(run, fault())
    return result


def played(result: driver.LoadResult) -> list[tuple[str, list[str]]]:
    return [(c.conversation_id, c.texts) for c in result.conversations if c.conversation_id]


def _key(event: dict) -> str:
    return json.dumps([event.get(k) for k in ("event", "timestamp", "name", "text")])


@dataclass
class Delivery:
    """How the stored events of some conversations showed up on the event queue."""

    stored: int
    delivered: int
    lost: int  # stored, never queued
    duplicates: int  # queued more than once (at-least-once delivery)
    unknown: int  # queued, never stored


async def broker_delivery(
    database_url: str, queue: str, sender_ids: Sequence[str], timeout: float = 60.0
) -> Delivery:
    """Drain ``queue`` until every stored event of ``sender_ids`` arrived, or ``timeout``."""
    stored = checks.load_events(database_url, sender_ids)
    expected = Counter(_key(e) for conv in stored.values() for e in conv.events)
    delivered: Counter = Counter()
    deadline = time.monotonic() + timeout
    while True:
        for body in await asyncio.to_thread(svc.drain_queue, queue):
            event = json.loads(body)
            if event.get("sender_id") in stored:
                delivered[_key(event)] += 1
        lost = expected - delivered
        if not lost or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)
    unknown = set(delivered) - set(expected)
    return Delivery(
        stored=sum(expected.values()),
        delivered=sum(delivered.values()),
        lost=sum(lost.values()),
        duplicates=sum((delivered - expected).values()) - sum(delivered[k] for k in unknown),
        unknown=sum(delivered[k] for k in unknown),
    )
