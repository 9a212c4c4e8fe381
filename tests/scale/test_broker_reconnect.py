"""The event relay keeps publishing after every RabbitMQ outage, not only the first ones.

Found by the soak of 2026-12-07: after the phase-5 outage one replica's relay published
nothing for five minutes while RabbitMQ was back and its connection reported ready - 7,914
events stayed in the outbox. aio_pika's robust connection reopens only the channels it still
knows, and it keeps them in a *weak* set; Rasa's broker keeps the exchange but not the channel,
so once the garbage collector had run after a reconnect the channel was gone, the exchange
kept its closed one, and every publish failed at once with "channel closed" (logged once, as
the outage began). Played here on a RabbitMQ node of the test's own: two outages in a row,
the garbage collector run in between, and the relay must deliver everything after each.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.services import OwnRabbitMQ, Services, drain_queue_with_ids, started
from cartguard.stores import outbox
from cartguard.stores.broker import RedactingPikaEventBroker

pytestmark = [pytest.mark.services]

QUEUE = "cartguard_reconnect_test"
OUTAGES = 2
OUTAGE_SECONDS = 20


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnRabbitMQ]:
    with started(OwnRabbitMQ(tmp_path_factory.mktemp("reconnect-rabbit"))) as own:
        yield own


class Shoppers:
    """Events keep arriving (one every 20 ms) while the relay publishes and RabbitMQ goes away."""

    def __init__(self, engine: sa.engine.Engine, broker: RedactingPikaEventBroker) -> None:
        self.engine, self.broker = engine, broker
        self.written = 0
        self.talking = asyncio.Event()
        self.talking.set()

    async def run(self) -> None:
        while True:
            await self.talking.wait()
            with self.engine.begin() as conn:
                sender = f"conv-{self.written % 4}"
                outbox.add_rows(conn, sender, [{"event": "user", "n": self.written}], time.time())
            self.written += 1
            self.broker.outbox_committed()
            await asyncio.sleep(0.02)

    async def all_sent(self, seconds: float) -> int:
        """Pause; rows still unsent once all were sent or ``seconds`` passed; go on."""
        self.talking.clear()
        deadline = time.monotonic() + seconds
        while (left := outbox.pending_count(self.engine)) and time.monotonic() < deadline:
            gc.collect()  # what a busy process does now and then
            await asyncio.sleep(0.5)
        self.talking.set()
        return left


async def test_the_relay_publishes_again_after_each_of_several_rabbitmq_outages(
    rabbit: OwnRabbitMQ, tmp_path: Path
) -> None:
    services = Services(amqp_url=rabbit.url)
    engine = sa.create_engine(f"sqlite:///{tmp_path}/outbox.db")
    outbox.create_table(engine)
    broker = RedactingPikaEventBroker(
        "127.0.0.1",
        "guest",
        "guest",
        port=rabbit.port,
        queues=[QUEUE],
        connect_timeout_seconds=5,
        heartbeat_seconds=10,
        publish_timeout_seconds=5,
    )
    await broker.connect()
    broker.attach_outbox(engine)
    shoppers = Shoppers(engine, broker)
    talking = asyncio.get_running_loop().create_task(shoppers.run())
    try:
        for outage in range(1, OUTAGES + 1):
            await asyncio.sleep(2)
            assert await shoppers.all_sent(30) == 0, f"before outage {outage}"
            await asyncio.sleep(1)  # the relay is publishing as RabbitMQ stops
            await asyncio.to_thread(rabbit.ctl, "stop_app")
            await asyncio.sleep(OUTAGE_SECONDS)
            await asyncio.to_thread(rabbit.ctl, "start_app")
            left = await shoppers.all_sent(60)
            assert left == 0, f"after outage {outage} of {OUTAGES}: {left} rows never published"
    finally:
        talking.cancel()
        await broker.close()
    received = [json.loads(body)["n"] for body, _ in drain_queue_with_ids(QUEUE, services)]
    assert sorted(set(received)) == list(range(shoppers.written))  # all arrived (copies allowed)
