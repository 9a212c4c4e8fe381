"""Turns in flight: a shopper's message outlives the replica that was answering it.

Rasa saves a conversation's tracker at the end of a turn. A replica killed in the middle of
one (a crash, an OOM kill, a node drained without grace) takes the shopper's message with
it: nothing was stored, the socket drops, and the widget, once it reconnects through the
load balancer to another replica, waits for a reply that nobody is producing.

So the webchat channel writes each message down the moment it arrives, before any check or
lookup, and crosses it out when its turn has ended. The record is the message *sealed* with
the vault's active key (AES-GCM, bound to the conversation and the turn id): Redis never
holds a shopper's words or a login token in clear. While the turn runs, its replica renews a
short *lease*; a replica that dies stops renewing. When the shopper's socket comes back
(``session_request`` with the same ticket, proven, on any replica), that replica waits for
the dead replica's leases to lapse, claims the orphaned turns atomically (one claimer wins)
and runs them through the channel again, oldest first, as if the socket had just sent them
with the login token it proved itself with (every check again), under the same message id.
A turn whose message id is already in the tracker (the replica died after saving, before
crossing out) is not run again; its stored answers are sent once more.

What the record cannot cover is a message the dying replica never wrote down (still in the
network, a socket buffer, or waiting for its turn to be written). For that the channel sends
a *receipt* (``message_received`` with the client's ``message_id``) once the message is
written down, and the widget (``cartguard/webapp/static/delivery.js``) sends every message
it holds no receipt for again, with the same id and ``resent: true``, once its socket is
confirmed into the session again. A copy of a turn that is written down (answered or
awaiting replay) or already in the tracker gets its receipt and nothing else: the turn id is
derived from the client's id (:func:`turn_id_for`), so every copy names the same turn.

Not covered, on purpose: a replica whose event loop stalls for longer than the lease while
its turn still runs would see that turn replayed behind its own (Rasa's conversation lock
orders them); a shopper who retyped the message before the replay gets both answered; a
message older than :data:`KEEP_SECONDS` is not replayed (the shopper has moved on), nor one
sealed with a key no longer configured. Without Redis (one process) there is no other
replica to take over, and nothing is recorded.

With Redis unavailable the channel carries on without the record (a logged warning): the
chat must not stop because crash recovery cannot be written down.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Protocol

from cartguard.vault import VaultError, get_vault

logger = logging.getLogger(__name__)

#: a turn's lease; its replica renews it every LEASE_SECONDS / 3 while the turn runs. Not
#: shorter: a live replica whose event loop stalls (a busy machine) must not lose its turn to
#: a replay. Not longer: a dead replica's shopper waits this long for the answer (its
#: conversation lock, a 15 s lease of its own, lapses before)
LEASE_SECONDS = 20.0
#: an unanswered message older than this is not replayed
KEEP_SECONDS = 300
#: how long a reconnecting socket waits for the leases of another replica's turns to lapse
#: (a live replica finishes and crosses out; a dead one stops renewing)
WAIT_SECONDS = LEASE_SECONDS + 5.0
POLL_SECONDS = 0.5
REDIS_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Turn:
    """One message as it arrived, sealed (see :func:`seal_turn`); no login token."""

    conversation_id: str
    sealed: str
    sender: str  # digest of the login token it came with ("" without one)
    turn_id: str
    sent_at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Turn | None:
        try:
            data = json.loads(raw)
            return cls(
                conversation_id=str(data["conversation_id"]),
                sealed=str(data["sealed"]),
                sender=str(data["sender"]),
                turn_id=str(data["turn_id"]),
                sent_at=float(data["sent_at"]),
            )
        except (ValueError, KeyError, TypeError):
            logger.warning("inflight: an unreadable turn record was dropped")
            return None


def _aad(conversation_id: str, turn_id: str) -> bytes:
    return f"inflight:{conversation_id}:{turn_id}".encode()


def sender_digest(token: object) -> str:
    """Who sent a message, as far as a record needs to know: a digest of its login token."""
    if not isinstance(token, str) or not token:
        return ""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


#: what a client may name its message with (the widget's resend, see ``turn_id_for``)
_CLIENT_MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def client_message_id(data: object) -> str | None:
    """The id a client gave its message (``message_id``), or None when it gave none or a bad one."""
    value = data.get("message_id") if isinstance(data, dict) else None
    if isinstance(value, str) and _CLIENT_MESSAGE_ID.fullmatch(value):
        return value
    return None


def turn_id_for(conversation_id: str, client_id: str) -> str:
    """The turn id of a client's message: the same for every copy the client sends of it.

    Derived rather than taken as is, so that a client naming its message like another
    conversation's turn names nothing but a turn of its own conversation.
    """
    return hashlib.sha256(f"{conversation_id}:{client_id}".encode()).hexdigest()[:32]


def seal_turn(
    conversation_id: str, text: str, sender: str = "", turn_id: str | None = None
) -> Turn:
    """A record of ``text`` that only the replicas (holding the vault keys) can read."""
    turn_id = turn_id or uuid.uuid4().hex
    sealed = get_vault().seal_field(text, _aad(conversation_id, turn_id))
    return Turn(conversation_id, sealed, sender, turn_id)


def open_turn(turn: Turn) -> str | None:
    """The message of a record, or None (logged) when it cannot be opened."""
    try:
        return get_vault().open_field(turn.sealed, _aad(turn.conversation_id, turn.turn_id))
    except VaultError as exc:
        logger.warning("inflight: a message in flight could not be opened (%s)", exc)
        return None


class Turns(Protocol):
    """Where turns in flight are written down (shared by the replicas)."""

    #: whether anything is written down (sealing costs a little; skipped when not)
    records: bool

    async def begin(self, turn: Turn) -> None: ...

    async def end(self, turn: Turn) -> None: ...

    async def orphans(self, conversation_id: str) -> list[Turn]: ...

    async def known(self, conversation_id: str, turn_id: str) -> bool: ...


class NoTurns:
    """One process: if it dies, nobody is left to replay; nothing is written down."""

    records = False

    async def begin(self, turn: Turn) -> None:
        return None

    async def end(self, turn: Turn) -> None:
        return None

    async def orphans(self, conversation_id: str) -> list[Turn]:
        return []

    async def known(self, conversation_id: str, turn_id: str) -> bool:
        return False


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

    records = True

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

    async def known(self, conversation_id: str, turn_id: str) -> bool:
        """Whether the turn is written down: being answered, or waiting to be replayed."""
        try:
            return bool(await self._redis.hexists(self._hash(conversation_id), turn_id))
        except Exception as exc:
            self._unavailable(exc)
            return False

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
