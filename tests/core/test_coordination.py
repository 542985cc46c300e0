"""Redis coordination: the token bucket shared by every process, and blocks from Retry-After."""

from __future__ import annotations

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
