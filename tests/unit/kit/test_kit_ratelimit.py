"""The per-client moving window of `RateLimit`, on a clock the test moves."""

from __future__ import annotations

import pytest

from services.kit.ratelimit import RateLimit, TooManyRequests


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_amount_hits_within_the_window_then_refused_with_the_time_to_wait() -> None:
    clock = Clock()
    limit = RateLimit("3/minute", "deliveries", clock=clock)
    for _ in range(3):
        limit.hit("a")
        clock.now += 10
    with pytest.raises(TooManyRequests) as refused:
        limit.hit("a")
    assert refused.value.what == "deliveries"
    assert refused.value.retry_after == 30  # the first hit (at 1000) leaves the window at 1060; now is 1030


def test_the_window_moves_and_a_refused_hit_is_not_counted() -> None:
    clock = Clock()
    limit = RateLimit("2/second", "x", clock=clock)
    limit.hit("a")
    clock.now += 0.5
    limit.hit("a")
    for _ in range(5):
        with pytest.raises(TooManyRequests):
            limit.hit("a")
    clock.now += 0.5  # the first hit is exactly a window old: still counted (as limits' moving window)
    with pytest.raises(TooManyRequests) as refused:
        limit.hit("a")
    assert refused.value.retry_after == 1
    clock.now += 0.01  # now it has left; the refused hits never counted
    limit.hit("a")
    with pytest.raises(TooManyRequests):
        limit.hit("a")


def test_clients_are_counted_apart() -> None:
    clock = Clock()
    limit = RateLimit("1/minute", "x", clock=clock)
    limit.hit("a")
    limit.hit("b")
    with pytest.raises(TooManyRequests):
        limit.hit("a")


def test_idle_clients_are_forgotten() -> None:
    clock = Clock()
    limit = RateLimit("5/second", "x", clock=clock)
    for client in ("a", "b", "c"):
        limit.hit(client)
    clock.now += 0.5
    limit.hit("a")
    clock.now += 1.2  # b and c hit last 1.7 s ago, a 1.2 s ago
    limit.hit("d")
    assert set(limit._hits) == {"d"}
    limit.hit("a")
    assert set(limit._hits) == {"a", "d"}


def test_the_notation_of_limits() -> None:
    limit = RateLimit("10 per 2 hours", "x")
    assert (limit.amount, limit.window) == (10, 7200.0)
