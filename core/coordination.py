"""Redis for coordination between web and worker processes: locks and token buckets.

Keys live under the cache's key prefix, so that tests and deployments sharing a server stay apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache

import redis
from django.conf import settings
from redis.exceptions import LockNotOwnedError, RedisError
from redis.lock import Lock

from core import metrics

__all__ = [
    "Busy",
    "RedisError",
    "block",
    "blocked_for",
    "bucket_take",
    "client",
    "forget",
    "get",
    "held",
    "key",
    "lock",
    "put",
    "put_new",
]

# A token bucket: `capacity` tokens, refilled at `rate` per second, by Redis's own clock so that
# every process agrees. Returns the seconds until the caller's token is due; the token is
# reserved when that is at most `max_wait` (the caller then sleeps), else nothing is taken.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(saved[1]) or capacity
local ts = tonumber(saved[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate end
if wait <= max_wait then tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return tostring(wait)
"""


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)


def key(name: str) -> str:
    return f"{settings.CACHES['default']['KEY_PREFIX']}:{name}"


def lock(name: str, *, timeout: float, wait: float) -> Lock:
    """A lock that expires after `timeout` s (a killed holder frees it); acquiring waits up to `wait` s."""
    held: Lock = client().lock(key(f"lock:{name}"), timeout=timeout, blocking_timeout=wait, sleep=0.05)
    return held


class Busy(Exception):
    """Someone else held the lock for longer than we could wait."""


@contextmanager
def held(name: str, *, timeout: float, wait: float) -> Iterator[Lock]:
    """Hold lock `name` for the block; raises Busy if it can't be had within `wait` s.

    Long work keeps a short `timeout` and renews it (`reacquire()`) as it goes, so that a
    killed holder frees the lock soon. If the lock expired under a slow holder, releasing it
    is not an error: the block's own result or exception is what counts.
    """
    acquired = lock(name, timeout=timeout, wait=wait)
    if not acquired.acquire():
        raise Busy(name)
    try:
        yield acquired
    finally:
        with suppress(LockNotOwnedError):
            acquired.release()


def bucket_take(name: str, *, rate: float, burst: int, max_wait: float) -> float:
    """Seconds until a token of bucket `name` (`rate` per second, at most `burst` at once) is the caller's.

    In any window of T seconds the bucket gives at most burst + rate * T tokens. At most
    `max_wait`: the token is reserved and the caller waits that long. More: nothing was
    taken, the caller should give up for now.
    """
    wait = float(client().eval(_TAKE, 1, key(f"bucket:{name}"), burst, rate, max_wait))
    metrics.bucket_waited(name, wait, max_wait)
    return wait


def get(name: str) -> str | None:
    """A value kept with `put` (one round trip on a long-lived client: the hot paths use this)."""
    value = client().get(key(name))
    return None if value is None else value.decode() if isinstance(value, bytes) else str(value)


def put(name: str, value: str, *, seconds: int) -> None:
    client().set(key(name), value, ex=max(1, seconds))


def put_new(name: str, value: str, *, seconds: int) -> bool:
    """Like `put`, only if `name` holds nothing yet; whether it was put."""
    return bool(client().set(key(name), value, ex=max(1, seconds), nx=True))


def forget(names: list[str]) -> None:
    if names:
        client().delete(*(key(name) for name in names))


def block(name: str, *, seconds: float) -> None:
    """Remember for `seconds` that a service told us to wait (a 429's Retry-After)."""
    client().set(key(f"blocked:{name}"), "1", px=max(1, int(seconds * 1000)))


def blocked_for(name: str) -> float:
    """Seconds left of a block set by `block`, or 0."""
    left = client().pttl(key(f"blocked:{name}"))
    return max(0, int(left)) / 1000
