"""The token bucket behind `send --rate`: the long-run rate holds, bursts are bounded, no limit means no wait."""

from __future__ import annotations

import pytest
from eventpipe_cli.ratelimit import TokenBucket
from hypothesis import given, settings
from hypothesis import strategies as st


def _simulate(bucket: TokenBucket, sizes: list[int]) -> float:
    """Send batches as fast as the bucket allows on a simulated clock; return the time the last one left."""
    now = 0.0
    for size in sizes:
        now += bucket.wait_time(size, now)
        bucket.take(size, now)
    return now


@settings(max_examples=50, deadline=None)
@given(rate=st.floats(10, 10_000), burst_factor=st.floats(0.1, 2), sizes=st.lists(st.integers(1, 1000), min_size=1,
                                                                                   max_size=60))
def test_long_run_rate_never_exceeds_the_limit(rate: float, burst_factor: float, sizes: list[int]) -> None:
    burst = max(1.0, rate * burst_factor)
    elapsed = _simulate(TokenBucket(rate, burst), sizes)
    sent_before_last = sum(sizes[:-1])
    # Everything but the last batch was paid for by the initial burst plus what the rate refilled.
    assert sent_before_last <= burst + rate * elapsed + 1e-6 * rate


def test_steady_rate_is_reached() -> None:
    elapsed = _simulate(TokenBucket(rate=1000, burst=100), [100] * 101)
    assert elapsed == pytest.approx(10.0, rel=1e-6)


def test_no_rate_means_no_wait() -> None:
    bucket = TokenBucket(rate=0, burst=0)
    assert bucket.wait_time(10**9, 0.0) == 0.0


def test_a_batch_bigger_than_the_burst_still_goes_out() -> None:
    bucket = TokenBucket(rate=100, burst=10)
    assert bucket.wait_time(500, 0.0) == 0.0
    bucket.take(500, 0.0)
    assert bucket.wait_time(500, 0.0) == pytest.approx((10 + 490) / 100)


def test_burst_is_required_with_a_rate() -> None:
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(rate=10, burst=0)
