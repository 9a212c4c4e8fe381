"""Token-bucket rate limits, in process memory or shared through Redis.

A bucket holds at most ``burst`` tokens and refills at ``per_minute`` tokens a minute; each
message takes one. Bursts of normal typing pass, a flood is cut to the sustained rate.

With ``settings.redis_url`` set, buckets live in Redis so that every Rasa replica counts the
same shopper together; the refill arithmetic runs in one Lua script (atomic, Redis clock).
If Redis stops answering, the limiter falls back to its in-memory buckets and logs once:
rate limiting is a safety net and must not take the assistant down with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cartguard.settings import Settings, get_settings

logger = logging.getLogger(__name__)

_MAX_MEMORY_BUCKETS = 50_000


@dataclass(frozen=True)
class Rate:
    """Bucket size and refill rate."""

    burst: int
    per_minute: int

    @property
    def per_second(self) -> float:
        return max(self.per_minute, 1) / 60.0


class RateLimiter(Protocol):
    async def allow(self, key: str) -> bool:
        """Take one token for ``key``; False when the bucket is empty."""


class MemoryRateLimiter:
    """Buckets in this process (the default on a single machine)."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    async def allow(self, key: str) -> bool:
        return self.allow_now(key)

    def allow_now(self, key: str) -> bool:
        now = self._clock()
        tokens, stamp = self._buckets.get(key, (float(self.rate.burst), now))
        tokens = min(float(self.rate.burst), tokens + (now - stamp) * self.rate.per_second)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        if len(self._buckets) >= _MAX_MEMORY_BUCKETS and key not in self._buckets:
            self._forget_full_buckets(now)
        self._buckets[key] = (tokens, now)
        return allowed

    def _forget_full_buckets(self, now: float) -> None:
        """Drop buckets that have refilled completely: they hold no information."""
        refill = self.rate.burst / self.rate.per_second
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < refill}


# KEYS[1] bucket; ARGV: burst, tokens per second. Returns 1 when allowed.
_BUCKET_SCRIPT = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil then tokens = burst; stamp = now end
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return allowed
"""


class RedisRateLimiter:
    """Buckets shared by every replica through Redis, with an in-memory fallback."""

    def __init__(self, url: str, rate: Rate, prefix: str = "cartguard:rl:") -> None:
        import redis.asyncio as aioredis

        self.rate = rate
        self.prefix = prefix
        self._redis = aioredis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script = self._redis.register_script(_BUCKET_SCRIPT)
        self._fallback = MemoryRateLimiter(rate)
        self._warned = False

    async def allow(self, key: str) -> bool:
        try:
            result = await self._script(
                keys=[self.prefix + key], args=[self.rate.burst, self.rate.per_second]
            )
        except Exception as exc:
            if not self._warned:
                logger.warning(
                    "rate limiting: Redis is not answering (%s); counting in this process "
                    "until it is back",
                    type(exc).__name__,
                )
                self._warned = True
            return self._fallback.allow_now(key)
        self._warned = False
        return int(result) == 1

    async def close(self) -> None:
        await self._redis.close()


def build_limiter(rate: Rate, settings: Settings | None = None) -> RateLimiter:
    """Redis-backed when ``settings.redis_url`` is set, else in memory."""
    settings = settings or get_settings()
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, rate)
    return MemoryRateLimiter(rate)
