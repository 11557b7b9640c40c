"""Backoff of the idempotent consumer's retries (services.kit.consumer.RetryPolicy)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.kit.consumer import RetryPolicy


def test_default_backoff_doubles_from_a_tenth_of_a_second() -> None:
    policy = RetryPolicy()

    assert [policy.backoff(n) for n in range(1, 6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])


def test_default_backoff_is_capped_at_five_seconds() -> None:
    policy = RetryPolicy()

    assert policy.backoff(6) == pytest.approx(3.2)
    assert policy.backoff(7) == 5.0
    assert policy.backoff(50) == 5.0


def test_custom_policy() -> None:
    policy = RetryPolicy(max_attempts=3, first_backoff=1.0, max_backoff=3.0)

    assert [policy.backoff(n) for n in range(1, 5)] == [1.0, 2.0, 3.0, 3.0]


@settings(max_examples=200)
@given(
    first=st.floats(min_value=0.001, max_value=10.0),
    cap=st.floats(min_value=0.001, max_value=100.0),
    attempt=st.integers(min_value=1, max_value=60),
)
def test_backoff_doubles_until_the_cap(first: float, cap: float, attempt: int) -> None:
    policy = RetryPolicy(first_backoff=first, max_backoff=cap)

    now, later = policy.backoff(attempt), policy.backoff(attempt + 1)

    assert 0 < now <= cap
    assert later == pytest.approx(min(now * 2, cap))


def test_backoff_is_capped_for_any_attempt() -> None:
    assert RetryPolicy(max_attempts=2000).backoff(1100) == 5.0
