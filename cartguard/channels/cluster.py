"""What the webchat channel shares between Rasa replicas: socket.io emits and socket holders.

A socket lives in one replica, but a reply for its conversation may be produced by another:
the web service's ``trigger_intent`` after a secure form lands on whichever replica the load
balancer picks. With ``CARTGUARD_SOCKETIO_REDIS_URL`` set:

* :class:`JsonRedisManager` is the socket.io server's client manager (python-socketio's
  ``AsyncRedisManager``): every emit is published on a Redis channel and each replica delivers
  it to the sockets it holds in that room. Two changes from the stock manager: messages are
  JSON, never pickle (``pickle.loads`` on what arrives from Redis would run code for anyone
  who can publish there); and publishing is bounded (2 s) and, when Redis does not answer,
  falls back to delivering on this replica only, so shoppers connected here still get their
  replies during a Redis outage (a reply for a socket on another replica is then lost, and
  the log says so).
* :class:`RedisHolders` keeps the rule "one live socket holds an anonymous conversation"
  across replicas: ``SET NX`` with an expiry, renewed by a heartbeat while the socket lives,
  deleted (compare-and-delete) when it leaves. A replica that dies stops renewing; its holds
  lapse after :data:`HOLD_SECONDS`. While Redis does not answer, each replica enforces the
  rule for its own sockets (the in-process behaviour) and logs once.

Without the setting (one Rasa process) the socket.io server keeps its default in-process
manager and :class:`MemoryHolders` applies the rule in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any, Protocol

from socketio import AsyncRedisManager
from socketio.asyncio_manager import AsyncManager

logger = logging.getLogger(__name__)

CHANNEL = "cartguard-socketio"
PUBLISH_TIMEOUT_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 2.0
HOLD_SECONDS = 30
HEARTBEAT_SECONDS = 10.0


class JsonRedisManager(AsyncRedisManager):
    """python-socketio's Redis client manager, speaking JSON, with bounded publishing."""

    name = "cartguard-redis"

    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        self._fallback_warned = False
        super().__init__(url=url, channel=channel, write_only=False, logger=logger)

    def _redis_connect(self) -> None:
        from redis import asyncio as aioredis

        # Publishing: short socket timeouts, so an unresponsive Redis cannot hold a turn.
        self.redis = aioredis.Redis.from_url(
            self.redis_url,
            socket_timeout=PUBLISH_TIMEOUT_SECONDS,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_keepalive=True,
            health_check_interval=30,
        )
        # Listening: no read timeout (an idle subscription is normal); keepalives and a health
        # check notice a dead connection, and the manager then subscribes again.
        listener = aioredis.Redis.from_url(
            self.redis_url,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_keepalive=True,
            health_check_interval=30,
        )
        self.pubsub = listener.pubsub(ignore_subscribe_messages=True)

    async def _publish(self, data: dict[str, Any]) -> None:
        payload = json.dumps(data, separators=(",", ":"))
        await asyncio.wait_for(
            self.redis.publish(self.channel, payload), PUBLISH_TIMEOUT_SECONDS + 0.5
        )

    async def _listen(self):  # an async generator, as in the parent class
        async for raw in super()._listen():
            try:
                message = json.loads(raw)
            except (TypeError, ValueError):
                logger.warning("socket.io fan-out: ignored a message that is not JSON")
                continue
            if isinstance(message, dict):
                yield message  # the parent's loop uses a dict as is: no unpickling, ever

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: str | None = None,
        skip_sid: Any = None,
        callback: Any = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("ignore_queue"):
            return await super().emit(
                event, data, namespace=namespace, room=room, skip_sid=skip_sid, **kwargs
            )
        try:
            await super().emit(
                event, data, namespace=namespace, room=room, skip_sid=skip_sid, callback=callback
            )
            if self._fallback_warned:
                logger.warning("socket.io fan-out: Redis is answering again")
                self._fallback_warned = False
        except Exception as exc:
            if not self._fallback_warned:
                logger.error(
                    "socket.io fan-out: Redis did not take an emit (%s); delivering to the "
                    "sockets of this replica only until it is back - replies for sockets held "
                    "by other replicas are lost meanwhile",
                    type(exc).__name__,
                )
                self._fallback_warned = True
            await AsyncManager.emit(
                self, event, data, namespace=namespace or "/", room=room, skip_sid=skip_sid
            )


class Holders(Protocol):
    """Who holds an anonymous conversation (one live socket at a time)."""

    async def acquire(self, conversation_id: str, sid: str) -> bool:
        """Hold the conversation for ``sid``; False when another live socket holds it."""

    async def release(self, conversation_id: str, sid: str) -> None:
        """``sid`` left; the conversation is free again (if ``sid`` held it)."""

    async def held_elsewhere(self, conversation_id: str, sid: str) -> bool:
        """True when a socket other than ``sid`` holds the conversation."""


class MemoryHolders:
    """Holders in this process (one Rasa process, or the fallback while Redis is down)."""

    def __init__(self) -> None:
        self.held: dict[str, str] = {}

    async def acquire(self, conversation_id: str, sid: str) -> bool:
        return self.acquire_now(conversation_id, sid)

    def acquire_now(self, conversation_id: str, sid: str) -> bool:
        current = self.held.get(conversation_id)
        if current not in (None, sid):
            return False
        self.held[conversation_id] = sid
        return True

    async def release(self, conversation_id: str, sid: str) -> None:
        if self.held.get(conversation_id) == sid:
            del self.held[conversation_id]

    async def held_elsewhere(self, conversation_id: str, sid: str) -> bool:
        return self.held.get(conversation_id) not in (None, sid)


# KEYS[1] hold key; ARGV: token, seconds. Take or renew a hold; 1 = ours, 0 = someone else's.
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
  return 1
end
return 0
"""
# KEYS[1] hold key; ARGV[1] token. Delete only our own hold.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisHolders:
    """Holders shared by every replica through Redis (``SET NX`` + expiry + heartbeat)."""

    def __init__(self, url: str, prefix: str = "cartguard:webchat:holder:") -> None:
        from redis import asyncio as aioredis

        self.prefix = prefix
        self.host_id = uuid.uuid4().hex
        self._redis = aioredis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, socket_keepalive=True
        )
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._release = self._redis.register_script(_RELEASE)
        self._local = MemoryHolders()  # what this replica holds; the fallback too
        self._heartbeat: asyncio.Task | None = None
        self._warned = False

    def _token(self, sid: str) -> str:
        return f"{self.host_id}:{sid}"

    def _unavailable(self, exc: Exception) -> None:
        if not self._warned:
            logger.warning(
                "webchat: Redis is not answering (%s); the one-socket rule for anonymous "
                "conversations is enforced per replica until it is back",
                type(exc).__name__,
            )
            self._warned = True

    def _ensure_heartbeat(self) -> None:
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def acquire(self, conversation_id: str, sid: str) -> bool:
        self._ensure_heartbeat()
        try:
            ours = await self._acquire(
                keys=[self.prefix + conversation_id], args=[self._token(sid), HOLD_SECONDS]
            )
        except Exception as exc:
            self._unavailable(exc)
            return self._local.acquire_now(conversation_id, sid)
        self._warned = False
        if int(ours) != 1:
            return False
        self._local.held[conversation_id] = sid
        return True

    async def release(self, conversation_id: str, sid: str) -> None:
        await self._local.release(conversation_id, sid)
        try:
            await self._release(keys=[self.prefix + conversation_id], args=[self._token(sid)])
        except Exception as exc:  # it lapses on its own after HOLD_SECONDS
            self._unavailable(exc)

    async def held_elsewhere(self, conversation_id: str, sid: str) -> bool:
        try:
            current = await self._redis.get(self.prefix + conversation_id)
        except Exception as exc:
            self._unavailable(exc)
            return await self._local.held_elsewhere(conversation_id, sid)
        if current is None:
            return False
        return current.decode() != self._token(sid)

    async def renew(self) -> int:
        """Renew every hold of this replica now; returns how many were lost to another socket."""
        lost = 0
        for conversation_id, sid in list(self._local.held.items()):
            ours = await self._acquire(
                keys=[self.prefix + conversation_id], args=[self._token(sid), HOLD_SECONDS]
            )
            if int(ours) != 1:
                lost += 1
                logger.warning(
                    "webchat: an anonymous conversation's hold lapsed and another socket took "
                    "it (Redis was unreachable for longer than %d s)",
                    HOLD_SECONDS,
                )
        return lost

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self.renew()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._unavailable(exc)

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._heartbeat
        for conversation_id, sid in list(self._local.held.items()):
            with contextlib.suppress(Exception):
                await self.release(conversation_id, sid)
        await self._redis.close()


def build_holders(redis_url: str | None) -> Holders:
    """Redis-backed when the socket.io Redis URL is set, else in this process."""
    return RedisHolders(redis_url) if redis_url else MemoryHolders()


def build_client_manager(redis_url: str | None) -> JsonRedisManager | None:
    """The socket.io client manager for ``redis_url``, or None for the in-process default."""
    return JsonRedisManager(redis_url) if redis_url else None
