"""Redis coordination: the token bucket and send windows shared by every process, and blocks
from Retry-After."""

from __future__ import annotations

import random
import time

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


def test_a_window_schedules_a_batch_as_a_whole() -> None:
    tenant = coordination.Rate("w-tenant", 4, uses=4)
    assert coordination.window_take([tenant], max_wait=5) == 0
    # The window is full until the batch's second has passed: even one more send waits for it.
    one = coordination.window_take([coordination.Rate("w-tenant", 4)], max_wait=5)
    assert 0.9 < one <= 1.0
    # First come, first served: a later batch goes after the single send, and its window.
    assert 1.9 < coordination.window_take([tenant], max_wait=5) <= 2.0


def test_a_window_widened_by_slack() -> None:
    assert coordination.window_take([coordination.Rate("w-slack", 2, uses=2)], max_wait=5, slack=0.5) == 0
    assert 1.4 < coordination.window_take([coordination.Rate("w-slack", 2)], max_wait=5, slack=0.5) <= 1.5


def test_a_rate_under_one_a_second_allows_one_send_per_its_interval() -> None:
    chat = coordination.Rate("w-chat", 0.5)
    assert coordination.window_take([chat], max_wait=5) == 0
    assert 1.9 < coordination.window_take([chat], max_wait=5) <= 2.0


def test_a_window_too_far_away_reserves_nothing_on_any_key() -> None:
    coordination.window_take([coordination.Rate("w-far", 1)], max_wait=5)
    both = [coordination.Rate("w-far", 1), coordination.Rate("w-near", 1)]
    assert coordination.window_take(both, max_wait=0.5) > 0.5
    # Nothing was recorded: `w-near` is free, and `w-far` has its one send only.
    assert coordination.window_take([coordination.Rate("w-near", 1)], max_wait=0) == 0
    assert 0.9 < coordination.window_take([coordination.Rate("w-far", 1)], max_wait=5) <= 1.0


def test_every_window_of_a_schedule_stays_within_its_limits() -> None:
    """Batches of any size across two tenants of one app, each send at its time as given:
    no sliding window of the tenant's, the app's or a chat's holds more than its limit."""
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
        # A little slack: this clock and Redis's differ by the round trip.
        wait = coordination.window_take(rates, max_wait=60, slack=0.01)
        at = time.monotonic() - start + wait
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
