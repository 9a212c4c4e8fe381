"""Token buckets and webhook dedupe, in memory / the database and in Redis (127.0.0.1:6379)."""

from __future__ import annotations

import uuid

import pytest

from cartguard.channels.dedupe import DatabaseDedupe, RedisDedupe, event_key
from cartguard.channels.guard import MessageGuard, client_ip
from cartguard.channels.ratelimit import MemoryRateLimiter, Rate, RedisRateLimiter, build_limiter
from cartguard.settings import load_settings

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not redis_available(), reason="Redis is not running locally")


async def test_memory_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(Rate(burst=3, per_minute=6), clock=clock)  # 1 token / 10 s
    assert [await limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert await limiter.allow("b")  # buckets are per key
    clock.now += 9
    assert not await limiter.allow("a")
    clock.now += 1
    assert await limiter.allow("a")
    assert not await limiter.allow("a")
    clock.now += 3600
    assert [await limiter.allow("a") for _ in range(4)] == [True, True, True, False]  # capped


@pytest.mark.services
@needs_redis
async def test_redis_bucket_is_shared_by_replicas() -> None:
    prefix = f"cartguard:test:{uuid.uuid4().hex}:"
    rate = Rate(burst=3, per_minute=1)
    replica_a = RedisRateLimiter(REDIS_URL, rate, prefix=prefix)
    replica_b = RedisRateLimiter(REDIS_URL, rate, prefix=prefix)
    try:
        results = [
            await replica_a.allow("sender:1"),
            await replica_b.allow("sender:1"),
            await replica_a.allow("sender:1"),
            await replica_b.allow("sender:1"),
        ]
        assert results == [True, True, True, False]
        assert await replica_b.allow("sender:2")
    finally:
        await replica_a.close()
        await replica_b.close()


async def test_redis_outage_falls_back_to_memory_without_raising() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", Rate(burst=2, per_minute=1))
    try:
        assert [await limiter.allow("x") for _ in range(3)] == [True, True, False]
    finally:
        await limiter.close()


def test_limiter_backend_follows_settings(monkeypatch) -> None:
    monkeypatch.delenv("CARTGUARD_REDIS_URL", raising=False)
    assert isinstance(build_limiter(Rate(1, 1), load_settings()), MemoryRateLimiter)
    monkeypatch.setenv("CARTGUARD_REDIS_URL", REDIS_URL)
    assert isinstance(build_limiter(Rate(1, 1), load_settings()), RedisRateLimiter)


@pytest.mark.services
@needs_redis
async def test_guard_with_redis_limits_messages() -> None:
    prefix = f"cartguard:test:{uuid.uuid4().hex}:"
    guard = MessageGuard(
        ip_limiter=RedisRateLimiter(REDIS_URL, Rate(100, 1), prefix=prefix),
        sender_limiter=RedisRateLimiter(REDIS_URL, Rate(2, 1), prefix=prefix),
    )
    outcomes = [await guard.check_message("socketio", "conv", "hi") for _ in range(3)]
    assert [o.reason if o else None for o in outcomes] == [None, None, "rate_sender"]


def test_forwarded_for_is_trusted_only_behind_our_proxy(monkeypatch) -> None:
    class Request:
        ip = "10.0.0.5"
        headers = {"x-forwarded-for": "6.6.6.6, 203.0.113.9"}

    monkeypatch.delenv("CARTGUARD_BEHIND_TLS_PROXY", raising=False)
    assert client_ip(Request(), load_settings()) == "10.0.0.5"
    monkeypatch.setenv("CARTGUARD_BEHIND_TLS_PROXY", "1")
    assert client_ip(Request(), load_settings()) == "203.0.113.9"  # the hop our proxy added


async def test_database_dedupe_records_each_key_once(channel_db) -> None:
    store = DatabaseDedupe()
    key = event_key("mid", uuid.uuid4().hex)
    assert await store.first_time(key)
    assert not await store.first_time(key)
    assert not await DatabaseDedupe().first_time(key)  # another replica, same database


@pytest.mark.services
@needs_redis
async def test_redis_dedupe_records_each_key_once(channel_db) -> None:
    store = RedisDedupe(REDIS_URL, prefix=f"cartguard:test:{uuid.uuid4().hex}:")
    key = event_key("mid", "m-1")
    assert await store.first_time(key)
    assert not await store.first_time(key)
