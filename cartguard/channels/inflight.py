"""Turns in flight: a shopper's message outlives the replica that was answering it.

Rasa saves a conversation's tracker at the end of a turn. A replica killed in the middle of
one (a crash, an OOM kill, a node drained without grace) takes the shopper's message with
it: nothing was stored, the socket drops, and the widget, once it reconnects through the
load balancer to another replica, waits for a reply that nobody is producing.

So the webchat channel writes each accepted message down before Rasa handles it and
crosses it out afterwards. The record holds what Rasa would have received (the text after
redaction, which labels were removed, the customer it was sent as), never the login token:
a replay uses the token the reconnecting socket proves itself with. While the turn runs,
its replica renews a short *lease*; a replica that dies stops renewing. When the shopper's
socket comes back (``session_request`` with the same ticket, on any replica), that replica
waits for the dead replica's leases to lapse, claims the orphaned turns atomically (one
claimer wins) and hands them to Rasa again, in the order they were sent, under the same
message id. A turn whose message id is already in the tracker (the replica died after
saving, before crossing out) is dropped, not answered twice.

Not covered, on purpose: a replica whose event loop stalls for longer than the lease while
its turn still runs would see that turn replayed behind its own (Rasa's conversation lock
orders them); a shopper who retyped the message before the replay gets both answered; a
message older than :data:`KEEP_SECONDS` is not replayed (the shopper has moved on). Without
Redis (one process) there is no other replica to take over, and nothing is recorded.

With Redis unavailable the channel carries on without the record (a logged warning): the
chat must not stop because crash recovery cannot be written down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Protocol

logger = logging.getLogger(__name__)

#: a turn's lease; its replica renews it every LEASE_SECONDS / 3 while the turn runs
LEASE_SECONDS = 15.0
#: an unanswered message older than this is not replayed
KEEP_SECONDS = 300
#: how long a reconnecting socket waits for the leases of another replica's turns to lapse
#: (a live replica finishes and crosses out; a dead one stops renewing)
WAIT_SECONDS = LEASE_SECONDS + 5.0
POLL_SECONDS = 0.5
REDIS_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Turn:
    """One accepted message as Rasa received it (no login token)."""

    conversation_id: str
    text: str
    customer_id: int | None
    pii_removed: list[str] = field(default_factory=list)
    turn_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    sent_at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Turn | None:
        try:
            data = json.loads(raw)
            return cls(
                conversation_id=str(data["conversation_id"]),
                text=str(data["text"]),
                customer_id=None if data["customer_id"] is None else int(data["customer_id"]),
                pii_removed=[str(label) for label in data["pii_removed"]],
                turn_id=str(data["turn_id"]),
                sent_at=float(data["sent_at"]),
            )
        except (ValueError, KeyError, TypeError):
            logger.warning("inflight: an unreadable turn record was dropped")
            return None


class Turns(Protocol):
    """Where turns in flight are written down (shared by the replicas)."""

    async def begin(self, turn: Turn) -> None: ...

    async def end(self, turn: Turn) -> None: ...

    async def orphans(self, conversation_id: str) -> list[Turn]: ...


class NoTurns:
    """One process: if it dies, nobody is left to replay; nothing is written down."""

    async def begin(self, turn: Turn) -> None:
        return None

    async def end(self, turn: Turn) -> None:
        return None

    async def orphans(self, conversation_id: str) -> list[Turn]:
        return []


# Claim every turn of one conversation whose lease has lapsed, atomically: of two replicas
# asking at once, each turn goes to one. KEYS[1] the conversation's hash; ARGV[1] the lease
# key prefix. Returns [orphans (records), still leased (count)].
_CLAIM = """
local fields = redis.call('HGETALL', KEYS[1])
local claimed, leased = {}, 0
for i = 1, #fields, 2 do
  if redis.call('EXISTS', ARGV[1] .. fields[i]) == 1 then
    leased = leased + 1
  else
    redis.call('HDEL', KEYS[1], fields[i])
    table.insert(claimed, fields[i + 1])
  end
end
return {claimed, leased}
"""


class RedisTurns:
    """Turns in flight in Redis: a hash per conversation, a lease key per turn."""

    def __init__(self, url: str, prefix: str = "cartguard:webchat:turns:") -> None:
        from redis import asyncio as aioredis

        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_keepalive=True,
            health_check_interval=30,
        )
        self._prefix = prefix
        self._claim = self._redis.register_script(_CLAIM)
        self._mine: dict[str, Turn] = {}  # turns this replica is answering (renewed)
        self._heartbeat: asyncio.Task | None = None
        self._warned = False

    def _hash(self, conversation_id: str) -> str:
        return f"{self._prefix}{conversation_id}"

    def _lease(self, turn_id: str) -> str:
        return f"{self._prefix}lease:{turn_id}"

    def _unavailable(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "inflight: Redis did not answer (%s); messages in flight are not recorded, "
                "a replica that dies now loses the turn it was answering",
                type(exc).__name__,
            )

    async def begin(self, turn: Turn) -> None:
        lease_ms = int(LEASE_SECONDS * 1000)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._lease(turn.turn_id), "1", px=lease_ms)
                pipe.hset(self._hash(turn.conversation_id), turn.turn_id, turn.to_json())
                pipe.expire(self._hash(turn.conversation_id), KEEP_SECONDS)
                await pipe.execute()
        except Exception as exc:
            self._unavailable(exc)
            return
        self._warned = False
        self._mine[turn.turn_id] = turn
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def end(self, turn: Turn) -> None:
        self._mine.pop(turn.turn_id, None)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hdel(self._hash(turn.conversation_id), turn.turn_id)
                pipe.delete(self._lease(turn.turn_id))
                await pipe.execute()
        except Exception as exc:
            self._unavailable(exc)

    async def orphans(self, conversation_id: str) -> list[Turn]:
        """The conversation's turns whose replica died, claimed by this caller, oldest first.

        Waits (up to :data:`WAIT_SECONDS`) while some turn is still leased: its replica may
        be alive and about to answer, or dead and its lease not yet lapsed.
        """
        deadline = time.monotonic() + WAIT_SECONDS
        claimed: list[Turn] = []
        while True:
            try:
                records, leased = await self._claim(
                    keys=[self._hash(conversation_id)], args=[self._lease("")]
                )
            except Exception as exc:
                self._unavailable(exc)
                break
            claimed += [t for t in map(Turn.from_json, records) if t is not None]
            if not leased or time.monotonic() >= deadline:
                break
            await asyncio.sleep(POLL_SECONDS)
        fresh = [t for t in claimed if time.time() - t.sent_at <= KEEP_SECONDS]
        return sorted(fresh, key=lambda t: t.sent_at)

    async def renew(self) -> int:
        """Extend the leases of this replica's turns; returns how many were renewed."""
        if not self._mine:
            return 0
        lease_ms = int(LEASE_SECONDS * 1000)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for turn_id in list(self._mine):
                    pipe.pexpire(self._lease(turn_id), lease_ms)
                return sum(bool(ok) for ok in await pipe.execute())
        except Exception as exc:
            self._unavailable(exc)
            return 0

    async def _beat(self) -> None:
        while self._mine:
            await asyncio.sleep(LEASE_SECONDS / 3)
            await self.renew()

    def stop_renewing(self) -> None:
        """Stop the heartbeat (what a killed replica does; for shutdown and tests)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None

    async def close(self) -> None:
        self.stop_renewing()
        with contextlib.suppress(Exception):
            await self._redis.close()


def build_turns(redis_url: str | None) -> Turns:
    """Redis-backed with several replicas (``CARTGUARD_SOCKETIO_REDIS_URL``), else nothing."""
    return RedisTurns(redis_url) if redis_url else NoTurns()
