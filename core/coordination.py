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
    "Turn",
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
    "window_done",
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


# Sliding windows that schedule sends the way a service counts them: at most `limit` arrivals in
# any `seconds`. A send arrives some time after its turn (a sleep, the network, the service's
# queue), so each key holds, per turn, when its sends may have arrived by: the turn's time plus
# the lateness seen lately, until the turn is over (`window_done`): then its end, by when they had
# arrived for sure (score: that time, member: "count:id:turn time").
#
# A call asks for `uses` sends on each key, all at one time t ≥ now, such that no send that may
# arrive within `seconds` before it (score > t - seconds) makes the window hold more than `limit`:
# t moves past the earliest until the call fits every key. Returns the wait and t; the sends are
# recorded when the wait is at most `max_wait`, else nothing is.
#
# Lateness: the most that any turn of the `lateness` key was late (its end minus its time),
# halving every LATENESS_HALF_LIFE seconds, within [LATENESS_MIN, LATENESS_MAX].
# Both scripts: Redis's clock, scores written alike, and the lateness kept under the last key.
_WINDOW_COMMON = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local function score(x) return string.format('%.6f', x) end
local late_key = KEYS[#KEYS]
local function lateness(half)
  local saved = redis.call('HMGET', late_key, 'late', 'ts')
  return (tonumber(saved[1]) or 0) * 0.5 ^ (math.max(0, now - (tonumber(saved[2]) or now)) / half)
end
"""
_WINDOW = (
    _WINDOW_COMMON
    + """
local max_wait = tonumber(ARGV[1])
local id = ARGV[2]
local low, high, half = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local windows = #KEYS - 1
local late = math.min(high, math.max(low, lateness(half)))
local limits, seconds, uses = {}, {}, {}
local t = now
local function count(member) return tonumber(string.match(member, '^(%d+):')) end
for i = 1, windows do
  limits[i] = tonumber(ARGV[3 * i + 3])
  seconds[i] = tonumber(ARGV[3 * i + 4])
  uses[i] = math.min(tonumber(ARGV[3 * i + 5]), limits[i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', score(now - seconds[i]))
end
local moved = true
while moved do
  moved = false
  for i = 1, windows do
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
  for i = 1, windows do
    redis.call('ZADD', KEYS[i], score(t + late), uses[i] .. ':' .. id .. ':' .. score(t))
    redis.call('PEXPIRE', KEYS[i], math.ceil((wait + high + seconds[i] + 60) * 1000))
  end
end
return {tostring(wait), score(t)}
"""
)

# A turn is over: its sends arrived by now. Each key's record of it ends now, and its lateness
# (now minus its time) counts for the turns to come.
_WINDOW_DONE = (
    _WINDOW_COMMON
    + """
local id, at, half, high = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 1, #KEYS - 1 do
  redis.call('ZADD', KEYS[i], 'XX', score(now), ARGV[4 + i] .. ':' .. id .. ':' .. at)
end
local late = math.min(high, math.max(lateness(half), now - tonumber(at)))
redis.call('HSET', late_key, 'late', tostring(late), 'ts', tostring(now))
redis.call('EXPIRE', late_key, math.ceil(half * 20))
return tostring(late)
"""
)
LATENESS_MIN = 0.02
# A slow answer (Graph taking a second over a large batch) says little about when the requests
# arrived, which is all that counts: at most this much is allowed for.
LATENESS_MAX = 0.5
LATENESS_HALF_LIFE = 30.0


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


@dataclass(frozen=True)
class Turn:
    """Sends reserved by `window_take` (when `reserved`): due in `wait` seconds; `window_done`
    when they are over."""

    wait: float
    reserved: bool
    rates: tuple[Rate, ...]
    lateness: str
    id: str
    at: str


def _window_key(rate: Rate) -> str:
    return key(f"window:{rate.name}")


def window_take(rates: Sequence[Rate], *, lateness: str, max_wait: float) -> Turn:
    """A turn for all the call's sends at once, counted as the service counts them: a sliding
    window per rate, of the times the sends may reach it. The sends are reserved when the wait is
    at most `max_wait` (the caller then waits, sends them together, and calls `window_done` once
    answered, also when sending failed); more: nothing was taken, and only `wait` means anything.

    A rate of r per second allows max(1, floor(r)) sends in any window of that many / r seconds.
    `lateness` names whose lateness to allow for (sends that share a path to the service). A
    call never counts more than a window holds: callers keep `uses` within `window_capacity`.
    """
    turn_id = uuid.uuid4().hex
    args: list[str | float | int] = [max_wait, turn_id, LATENESS_MIN, LATENESS_MAX, LATENESS_HALF_LIFE]
    for rate in rates:
        limit = window_capacity(rate.per_second)
        args += [limit, limit / rate.per_second, rate.uses]
    keys = [*(_window_key(rate) for rate in rates), key(f"lateness:{lateness}")]
    wait_text, at_text = client().eval(_WINDOW, len(keys), *keys, *args)
    wait = float(wait_text)
    # One figure per kind of window (`graph-chat:…` for a batch's chats together).
    for name in {rate.name.partition(":")[0]: rate.name for rate in rates}.values():
        metrics.bucket_waited(name, wait, max_wait)
    at = at_text.decode() if isinstance(at_text, bytes) else str(at_text)
    return Turn(wait, wait <= max_wait, tuple(rates), lateness, turn_id, at)


def window_done(turn: Turn) -> float:
    """The turn's sends were answered (or never went): they count as arrived by now. Returns
    the lateness allowed for from now on (nothing changes for a turn not reserved)."""
    if not turn.reserved:
        return 0.0
    keys = [*(_window_key(rate) for rate in turn.rates), key(f"lateness:{turn.lateness}")]
    uses = [min(rate.uses, window_capacity(rate.per_second)) for rate in turn.rates]
    args: list[str | float | int] = [turn.id, turn.at, LATENESS_HALF_LIFE, LATENESS_MAX, *uses]
    return float(client().eval(_WINDOW_DONE, len(keys), *keys, *args))


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
