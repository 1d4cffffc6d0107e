"""Lag-driven consumer scaling, as one pure function (the kopf timer in handlers.py only feeds it and applies).

The rule is the Horizontal Pod Autoscaler's, on consumer lag (Kinesis MillisBehindLatest, in seconds, the
worst shard): desired = ceil(current * lag / targetLag), ignored within a 10% tolerance; clamped to
[minReplicas, maxReplicas] and never above the open shard count (a consumer without a shard lease idles).
Scaling up is immediate; scaling down waits until a lower count has been wanted for the whole stabilization
window and then goes to the highest count wanted during that window, so the replica count does not flap.
KEDA's Kinesis scaler only counts shards; this is why the operator scales on lag itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TOLERANCE = 0.1


@dataclass(frozen=True)
class ScaleInput:
    current: int                   # replicas the consumer Deployment has now
    lag_seconds: float | None      # worst shard's MillisBehindLatest / 1000; None when unknown
    target_lag_seconds: float
    min_replicas: int
    max_replicas: int
    open_shards: int | None        # None when the stream cannot be read (then only [min, max] applies)
    now: float                     # seconds (any monotonic or epoch clock, the same for pending_since)
    stabilization_seconds: float
    pending_replicas: int | None = None   # the highest lower count wanted since pending_since
    pending_since: float | None = None


@dataclass(frozen=True)
class ScaleDecision:
    replicas: int
    reason: str
    pending_replicas: int | None = None
    pending_since: float | None = None

    def changed(self, current: int) -> bool:
        return self.replicas != current


def bounds(inp: ScaleInput) -> tuple[int, int]:
    """[low, high] the replica count must lie in; the open shard count caps both."""
    high = inp.max_replicas
    if inp.open_shards is not None:
        high = min(high, max(inp.open_shards, 1))
    low = min(inp.min_replicas, high)
    return low, high


def recommend(inp: ScaleInput) -> int:
    """The count the lag asks for, before stabilization."""
    low, high = bounds(inp)
    current = max(inp.current, 1)
    if inp.lag_seconds is None:
        wanted = current
    else:
        ratio = max(inp.lag_seconds, 0.0) / inp.target_lag_seconds
        wanted = current if abs(ratio - 1.0) <= TOLERANCE else math.ceil(current * ratio)
    return min(max(wanted, low), high)


def decide(inp: ScaleInput) -> ScaleDecision:
    """The replica count to set now, with the reason (for the Event) and the scale-down bookkeeping."""
    low, high = bounds(inp)
    if inp.current > high:
        reason = "ShardCap" if inp.open_shards is not None and high == inp.open_shards else "AboveMax"
        return ScaleDecision(high, reason)
    if inp.current < low:
        return ScaleDecision(low, "BelowMin")
    wanted = recommend(inp)
    if inp.lag_seconds is None:
        return ScaleDecision(inp.current, "LagUnknown")
    if wanted > inp.current:
        return ScaleDecision(wanted, "LagHigh")
    if wanted == inp.current:
        return ScaleDecision(inp.current, "Stable")
    if inp.stabilization_seconds <= 0:
        return ScaleDecision(wanted, "LagLow")
    # Lower count wanted: remember the highest such count since the window started.
    stale = inp.pending_replicas is not None and inp.pending_replicas >= inp.current
    if inp.pending_since is None or inp.pending_replicas is None or stale:
        return ScaleDecision(inp.current, "StabilizationWindow", wanted, inp.now)
    pending = max(inp.pending_replicas, wanted)
    if inp.now - inp.pending_since >= inp.stabilization_seconds:
        return ScaleDecision(pending, "LagLow")
    return ScaleDecision(inp.current, "StabilizationWindow", pending, inp.pending_since)
