"""The conversation lock shared by Rasa replicas: one turn of a conversation at a time.

Rasa's ``RedisLockStore`` reads the ticket queue, changes it in Python and writes it back.
Safe inside one process (no ``await`` in between), not across replicas: two replicas issuing,
returning or pruning tickets at the same moment overwrite each other's change, a waiting turn
finds its ticket gone or the lock deleted, and two turns of one conversation run at once
(their events interleave in the store). Here several "replicas" (threads, each with its own
store and Redis connection, as separate processes would have) take one conversation's lock
at once, on a Redis of our own.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rasa.core.lock_store import LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

from bench.services import OwnRedis, started
from cartguard.stores.lock_store import AtomicRedisLockStore

pytestmark = [pytest.mark.services]


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with started(OwnRedis(tmp_path_factory.mktemp("lock-redis"))) as own:
        yield own.port


def replica_store(port: int, **extra: object) -> AtomicRedisLockStore:
    """Built the way Rasa builds a custom lock store from endpoints.yml."""
    config = EndpointConfig(
        url="127.0.0.1",
        type="cartguard.stores.lock_store.AtomicRedisLockStore",
        port=port,
        db=0,
        key_prefix="locktest",
        **extra,
    )
    return AtomicRedisLockStore(endpoint_config=config)


class Occupancy:
    """How many turns are inside one conversation's lock, at most, over the whole run."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self.inside = 0
        self.most = 0
        self.served = 0
        self.errors: list[str] = []

    def enter(self) -> None:
        with self._guard:
            self.inside += 1
            self.most = max(self.most, self.inside)

    def leave(self) -> None:
        with self._guard:
            self.inside -= 1
            self.served += 1


def play_replica(store: RedisLockStore, conversation: str, turns: int, seen: Occupancy) -> None:
    """One replica's turns of the conversation, each holding the lock a few milliseconds."""

    async def turns_here() -> None:
        for _ in range(turns):
            try:
                async with store.lock(conversation, wait_time_in_seconds=0.002):
                    seen.enter()
                    await asyncio.sleep(0.003)
                    seen.leave()
            except LockError as exc:
                seen.errors.append(str(exc))

    asyncio.run(turns_here())


def play(stores: list[RedisLockStore], conversation: str, turns: int) -> Occupancy:
    seen = Occupancy()
    threads = [
        threading.Thread(target=play_replica, args=(store, conversation, turns, seen), daemon=True)
        for store in stores
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a turn never got the lock"
    return seen


def test_replicas_taking_one_conversation_s_lock_at_once_take_turns(redis_port: int) -> None:
    stores = [replica_store(redis_port) for _ in range(6)]
    seen = play(stores, "conv-race", turns=30)
    assert seen.errors == []
    assert seen.served == 6 * 30
    assert seen.most == 1, f"{seen.most} turns of one conversation ran at the same time"
    assert stores[0].get_lock("conv-race") is None  # the last one out removed the lock


def test_conversations_do_not_wait_for_each_other(redis_port: int) -> None:
    store = replica_store(redis_port)

    async def take(conversation: str) -> None:
        async with store.lock(conversation, wait_time_in_seconds=0.01):
            pass

    async def both() -> None:
        async with store.lock("conv-a"):
            await asyncio.wait_for(take("conv-b"), 2)  # conv-a is still held
            assert store.get_lock("conv-a") is not None

    asyncio.run(both())


def test_a_dead_replica_s_ticket_holds_the_conversation_only_for_its_lifetime(
    redis_port: int,
) -> None:
    """A replica killed mid-turn never returns its ticket; the next turn waits it out."""
    dead, alive = replica_store(redis_port), replica_store(redis_port)
    dead.issue_ticket("conv-dead", lock_lifetime=1.0)  # and then the process is gone
    began = time.monotonic()

    async def next_turn() -> None:
        async with alive.lock("conv-dead", lock_lifetime=30, wait_time_in_seconds=0.05):
            pass

    asyncio.run(next_turn())
    waited = time.monotonic() - began
    assert 0.5 < waited < 10, f"waited {waited:.1f} s for a ticket with a 1 s lifetime"
    assert alive.get_lock("conv-dead") is None


def test_the_lock_key_expires_with_its_last_ticket(redis_port: int) -> None:
    """Nothing is left behind in Redis for conversations whose replica died."""
    store = replica_store(redis_port)
    store.issue_ticket("conv-left", lock_lifetime=5.0)
    ttl = store.red.pttl(store.key_prefix + "conv-left")
    assert 0 < ttl <= 5_000 + 1_000


def test_rasa_builds_it_from_the_endpoints_file(tmp_path: Path, redis_port: int) -> None:
    from rasa.core.lock_store import LockStore
    from rasa.utils.endpoints import read_endpoint_config

    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        "lock_store:\n"
        "  type: cartguard.stores.lock_store.AtomicRedisLockStore\n"
        "  url: 127.0.0.1\n"
        f"  port: {redis_port}\n"
        "  db: 3\n"
        "  key_prefix: cartguard\n"
        "  socket_timeout: 2\n"
    )
    store = LockStore.create(read_endpoint_config(str(endpoints), "lock_store"))
    assert isinstance(store, AtomicRedisLockStore)
    assert store.key_prefix == "cartguard:lock:"
    assert store.red.connection_pool.connection_kwargs["db"] == 3
