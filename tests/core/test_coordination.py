"""Redis coordination: the token bucket and send windows shared by every process, and blocks
from Retry-After."""

from __future__ import annotations

import random
import time
from unittest import mock

import pytest

from core import coordination


def test_the_bucket_gives_its_capacity_then_says_how_long_to_wait() -> None:
    assert coordination.bucket_take("t", rate=1 / 15, burst=2, max_wait=0) == 0
    assert coordination.bucket_take("t", rate=1 / 15, burst=2, max_wait=0) == 0
    wait = coordination.bucket_take("t", rate=1 / 15, burst=2, max_wait=0)
    assert 14 < wait <= 15


def test_a_wait_longer_than_the_caller_accepts_takes_nothing() -> None:
    coordination.bucket_take("u", rate=1 / 30, burst=1, max_wait=0)
    first = coordination.bucket_take("u", rate=1 / 30, burst=1, max_wait=1)
    # Nothing was reserved: the next caller is told the same wait, and may reserve it.
    second = coordination.bucket_take("u", rate=1 / 30, burst=1, max_wait=60)
    assert first == pytest.approx(second, abs=0.5)
    # Reserved now: whoever comes next waits one more interval.
    assert coordination.bucket_take("u", rate=1 / 30, burst=1, max_wait=0) == pytest.approx(second + 30, abs=0.5)


def test_a_block_lasts_its_seconds() -> None:
    assert coordination.blocked_for("acs") == 0
    coordination.block("acs", seconds=20)
    assert 19 < coordination.blocked_for("acs") <= 20


def test_values_expire_and_are_forgotten() -> None:
    coordination.put("k", "v", seconds=5)
    assert coordination.get("k") == "v"
    coordination.forget(["k"])
    assert coordination.get("k") is None


def _over(sends: list[tuple[float, int]], *, limit: int, seconds: float) -> list[float]:
    """The send times at which a sliding window (t - seconds, t] counts more than `limit`."""
    return [t for t, _ in sends if sum(n for s, n in sends if t - seconds < s <= t) > limit]


def take(*rates: coordination.Rate, max_wait: float = 5, lateness: str = "test") -> coordination.Turn:
    return coordination.window_take(rates, lateness=lateness, max_wait=max_wait)


LATE = coordination.LATENESS_MIN


def test_a_window_schedules_a_batch_as_a_whole() -> None:
    tenant = coordination.Rate("w-tenant", 4, uses=4)
    assert take(tenant).wait == 0
    # The window is full until the batch's second has passed, and the time its sends may take
    # to arrive: even one more send waits for it.
    one = take(coordination.Rate("w-tenant", 4))
    assert 0.95 + LATE < one.wait <= 1.0 + LATE
    # First come, first served: a later batch goes after the single send, and its window.
    assert 1.95 + 2 * LATE < take(tenant).wait <= 2.0 + 2 * LATE


def test_a_rate_under_one_a_second_allows_one_send_per_its_interval() -> None:
    chat = coordination.Rate("w-chat", 0.5)
    assert take(chat).wait == 0
    assert 1.95 + LATE < take(chat).wait <= 2.0 + LATE


def test_a_turn_over_counts_from_when_it_was_answered() -> None:
    first = take(coordination.Rate("w-done", 1))
    time.sleep(0.3)
    # Answered 0.3 s after its time: the next send goes a second after the answer, and every
    # turn from now on allows for that lateness (while it lasts).
    assert coordination.window_done(first) == pytest.approx(0.3, abs=0.05)
    second = take(coordination.Rate("w-done", 1))
    assert 0.95 < second.wait <= 1.0
    coordination.window_done(second)
    other = coordination.Rate("w-other", 1)
    assert take(other).wait == 0
    assert 1.25 < take(other).wait <= 1.36


def test_lateness_allowed_for_has_a_ceiling() -> None:
    """A slow answer says little about when the requests arrived: at most LATENESS_MAX counts."""
    with mock.patch.object(coordination, "LATENESS_MAX", 0.1):
        turn = take(coordination.Rate("w-slow", 1), lateness="slow")
        time.sleep(0.3)
        assert coordination.window_done(turn) == pytest.approx(0.1)
        assert take(coordination.Rate("w-next", 1), lateness="slow").wait == 0
        assert 1.05 < take(coordination.Rate("w-next", 1), lateness="slow").wait <= 1.1


def test_lateness_fades() -> None:
    turn = take(coordination.Rate("w-fade", 1), lateness="fade")
    time.sleep(0.2)
    coordination.window_done(turn)
    with mock.patch.object(coordination, "LATENESS_HALF_LIFE", 0.05):
        time.sleep(0.5)  # ten half-lives
        assert take(coordination.Rate("w-faded", 1), lateness="fade").wait == 0
        assert take(coordination.Rate("w-faded", 1), lateness="fade").wait <= 1.0 + 2 * LATE


def test_a_window_too_far_away_reserves_nothing_on_any_key() -> None:
    take(coordination.Rate("w-far", 1))
    refused = take(coordination.Rate("w-far", 1), coordination.Rate("w-near", 1), max_wait=0.5)
    assert refused.wait > 0.5 and not refused.reserved
    assert coordination.window_done(refused) == 0
    # Nothing was recorded: `w-near` is free, and `w-far` has its one send only.
    assert take(coordination.Rate("w-near", 1), max_wait=0).wait == 0
    assert 0.95 < take(coordination.Rate("w-far", 1)).wait <= 1.0 + LATE


def test_every_window_of_a_schedule_stays_within_its_limits() -> None:
    """Batches of any size across two tenants of one app, each send arriving at its turn's
    time, answered at once: no sliding window of the tenant's, the app's or a chat's holds
    more than its limit."""
    rng = random.Random(7)  # noqa: S311 - a repeatable workload
    sends: dict[str, list[tuple[float, int]]] = {}
    start = time.monotonic()
    for _ in range(60):
        tenant = rng.choice(["a", "b"])
        chats = rng.sample(range(6), rng.randint(1, 5))
        rates = [
            coordination.Rate(f"s-tenant:{tenant}", 5, uses=len(chats)),
            coordination.Rate("s-app", 8, uses=len(chats)),
            *(coordination.Rate(f"s-chat:{tenant}{chat}", 2) for chat in chats),
        ]
        turn = coordination.window_take(rates, lateness="s", max_wait=60)
        at = time.monotonic() - start + turn.wait
        for rate in rates:
            sends.setdefault(rate.name, []).append((at, rate.uses))
    assert _over(sends["s-app"], limit=8, seconds=1) == []
    for name in ("s-tenant:a", "s-tenant:b"):
        assert _over(sends[name], limit=5, seconds=1) == []
    chats = [name for name in sends if name.startswith("s-chat:")]
    assert chats
    for name in chats:
        assert _over(sends[name], limit=2, seconds=1) == []
    # And they did not wait for nothing: the app's 8 a second is what bounds them.
    assert sum(n for _, n in sends["s-app"]) / max(t for t, _ in sends["s-app"]) > 5
