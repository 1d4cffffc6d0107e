"""The lag-driven scaling decision: a table of cases, then invariants checked with hypothesis."""

from __future__ import annotations

import pytest
from eventpipe_operator.scaling import ScaleInput, decide
from hypothesis import given, settings
from hypothesis import strategies as st

BASE = dict(target_lag_seconds=60.0, min_replicas=1, max_replicas=8, open_shards=8, now=1000.0,
            stabilization_seconds=300.0)


def inp(**changes: object) -> ScaleInput:
    return ScaleInput(**{"current": 2, "lag_seconds": 60.0, **BASE, **changes})  # type: ignore[arg-type]


# (case, input, expected replicas, expected reason)
CASES = [
    ("on target: stay", inp(), 2, "Stable"),
    ("within the 10% tolerance: stay", inp(lag_seconds=65.0), 2, "Stable"),
    ("double the target lag: double the replicas", inp(lag_seconds=120.0), 4, "LagHigh"),
    ("huge lag: up to max", inp(lag_seconds=10_000.0), 8, "LagHigh"),
    ("huge lag, few shards: up to the open shard count", inp(lag_seconds=10_000.0, open_shards=3), 3, "LagHigh"),
    ("above the shard count (shards merged): down at once", inp(current=6, open_shards=4), 4, "ShardCap"),
    ("above max (max lowered): down at once", inp(current=10, open_shards=None), 8, "AboveMax"),
    ("below min (min raised): up at once", inp(current=1, min_replicas=3), 3, "BelowMin"),
    ("min above the shard count: the shard count wins", inp(current=1, min_replicas=4, open_shards=2), 2,
     "BelowMin"),
    ("lag unknown: keep", inp(lag_seconds=None), 2, "LagUnknown"),
    ("shards unknown: only [min, max]", inp(lag_seconds=600.0, open_shards=None), 8, "LagHigh"),
    ("no lag: wants min, but waits for the window", inp(lag_seconds=0.0), 2, "StabilizationWindow"),
    ("no lag, window not over: keep", inp(lag_seconds=0.0, pending_replicas=1, pending_since=900.0), 2,
     "StabilizationWindow"),
    ("no lag, window over: down", inp(lag_seconds=0.0, pending_replicas=1, pending_since=700.0), 1, "LagLow"),
    ("window over: down to the highest count wanted during it",
     inp(current=4, lag_seconds=0.0, pending_replicas=3, pending_since=600.0), 3, "LagLow"),
    ("no stabilization: down at once", inp(lag_seconds=0.0, stabilization_seconds=0.0), 1, "LagLow"),
    ("zero replicas with lag: up to min at least", inp(current=0, lag_seconds=120.0), 1, "BelowMin"),
]


@pytest.mark.parametrize(("case", "given_input", "replicas", "reason"), CASES, ids=[c[0] for c in CASES])
def test_decision_table(case: str, given_input: ScaleInput, replicas: int, reason: str) -> None:
    decision = decide(given_input)
    assert (decision.replicas, decision.reason) == (replicas, reason), case


def test_a_rise_during_the_window_cancels_the_scale_down() -> None:
    first = decide(inp(lag_seconds=0.0))
    assert first.pending_replicas == 1 and first.pending_since == 1000.0
    # Lag comes back to target before the window ends: the pending scale-down is forgotten.
    back = decide(inp(now=1100.0, pending_replicas=first.pending_replicas, pending_since=first.pending_since))
    assert back.replicas == 2 and back.pending_replicas is None and back.pending_since is None


def test_no_flapping_under_oscillating_lag() -> None:
    """Lag alternating high/low every tick never scales down: each rise resets the window."""
    current, pending, since = 2, None, None
    changes = 0
    for tick in range(40):
        lag = 60.0 if tick % 2 else 0.0
        d = decide(inp(current=current, lag_seconds=lag, now=1000.0 + 15 * tick, pending_replicas=pending,
                       pending_since=since))
        changes += d.replicas != current
        current, pending, since = d.replicas, d.pending_replicas, d.pending_since
    assert changes == 0 and current == 2


@settings(max_examples=300, deadline=None)
@given(current=st.integers(0, 50), lag=st.none() | st.floats(0, 1e6, allow_nan=False),
       low=st.integers(1, 20), span=st.integers(0, 30), shards=st.none() | st.integers(1, 40),
       target=st.floats(1, 3600), window=st.floats(0, 3600), pending=st.none() | st.integers(1, 50),
       elapsed=st.floats(0, 7200))
def test_decision_invariants(current: int, lag: float | None, low: int, span: int, shards: int | None,
                             target: float, window: float, pending: int | None, elapsed: float) -> None:
    """Whatever the input: within [min, max] unless the shard count is lower, never above the open shards,
    never down faster than the window, and a pending scale-down is only remembered while one is wanted."""
    high = low + span
    since = None if pending is None else 10_000.0 - elapsed
    given_input = ScaleInput(current=current, lag_seconds=lag, target_lag_seconds=target, min_replicas=low,
                             max_replicas=high, open_shards=shards, now=10_000.0, stabilization_seconds=window,
                             pending_replicas=pending, pending_since=since)
    d = decide(given_input)
    cap = high if shards is None else min(high, shards)
    assert 1 <= d.replicas <= cap
    assert d.replicas >= min(low, cap)
    in_bounds = min(low, cap) <= current <= cap
    if in_bounds and d.replicas < current:
        # Only a completed stabilization window (or none at all) lowers an in-bounds count.
        assert window == 0 or (since is not None and 10_000.0 - since >= window)
    if d.pending_replicas is not None:
        assert d.replicas == current and d.pending_replicas < current and d.reason == "StabilizationWindow"
