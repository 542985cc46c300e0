"""Redis for coordination between web and worker processes: locks, token buckets and send windows.

Keys live under the cache's key prefix, so that tests and deployments sharing a server stay apart.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings
from redis.exceptions import LockNotOwnedError, RedisError
from redis.lock import Lock

from core import metrics

__all__ = [
    "Busy",
    "Rate",
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
    "window_capacity",
    "window_take",
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


# Sliding windows that schedule sends, the way a service counts them: a key holds the scheduled
# sends (score: when, member: "count:id"). A call asks for `uses` sends on each key, all at one
# time t: not before now nor before the key's last scheduled send (first come, first served), and
# with at most `limit` sends in any window (t - seconds, t]. It moves t past the earliest sends
# until the call fits in every key's window. Returns the seconds until t; the sends are recorded
# when that is at most `max_wait`, else nothing is.
_WINDOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local max_wait = tonumber(ARGV[1])
local id = ARGV[2]
local limits, seconds, uses = {}, {}, {}
local t = now
local function score(x) return string.format('%.6f', x) end
local function count(member) return tonumber(string.match(member, '^(%d+):')) end
for i = 1, #KEYS do
  limits[i] = tonumber(ARGV[3 * i])
  seconds[i] = tonumber(ARGV[3 * i + 1])
  uses[i] = math.min(tonumber(ARGV[3 * i + 2]), limits[i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', score(now - seconds[i]))
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  if last[2] then t = math.max(t, tonumber(last[2])) end
end
local moved = true
while moved do
  moved = false
  for i = 1, #KEYS do
    local sends = redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. score(t - seconds[i]), '+inf', 'WITHSCORES')
    local used = 0
    for j = 1, #sends, 2 do used = used + count(sends[j]) end
    local j, before = 1, t
    while used + uses[i] > limits[i] do
      used = used - count(sends[j])
      t = math.max(t, tonumber(sends[j + 1]) + seconds[i])
      j = j + 2
    end
    if t > before then moved = true end
  end
end
local wait = t - now
if wait <= max_wait then
  for i = 1, #KEYS do
    redis.call('ZADD', KEYS[i], score(t), uses[i] .. ':' .. id)
    redis.call('PEXPIRE', KEYS[i], math.ceil((wait + seconds[i]) * 1000) + 1000)
  end
end
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


@dataclass(frozen=True)
class Rate:
    """A service's limit of `per_second` on `name`, and how many of a call's sends count against it."""

    name: str
    per_second: float
    uses: int = 1


def window_take(rates: Sequence[Rate], *, max_wait: float, slack: float = 0.0) -> float:
    """Seconds until all the call's sends may go at once, counted as the service counts: a
    sliding window per rate. The sends are reserved when that is at most `max_wait` (the caller
    then waits that long and sends them together); more: nothing was taken.

    A rate of r per second allows max(1, floor(r)) sends in any window of that many / r
    seconds, widened by `slack` seconds, so that sends that go out a little late still fit.
    A call never counts more than a window holds: callers keep `uses` within it.
    """
    args: list[str | float | int] = [max_wait, uuid.uuid4().hex]
    for rate in rates:
        limit = max(1, math.floor(rate.per_second))
        args += [limit, limit / rate.per_second + slack, rate.uses]
    keys = [key(f"window:{rate.name}") for rate in rates]
    wait = float(client().eval(_WINDOW, len(keys), *keys, *args))
    # One figure per kind of window (`graph-chat:…` for a batch's chats together).
    for name in {rate.name.partition(":")[0]: rate.name for rate in rates}.values():
        metrics.bucket_waited(name, wait, max_wait)
    return wait


def window_capacity(per_second: float) -> int:
    """The most sends one `window_take` can ask for on a rate of `per_second`."""
    return max(1, math.floor(per_second))


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
