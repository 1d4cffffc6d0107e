"""A token bucket for `eventpipe send --rate`: pure arithmetic over a clock the caller passes in.

Keeping time out of the class makes the limit testable without sleeping: the sender asks how long to wait,
sleeps that long itself, and then takes the tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up. rate <= 0 means no limit."""

    rate: float
    burst: float
    _tokens: float = field(init=False)
    _last: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate > 0 and self.burst <= 0:
            raise ValueError(f"burst must be > 0 when a rate is set, got {self.burst}")
        self._tokens = self.burst

    def _refill(self, now: float) -> None:
        if self._last is not None and now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        if self._last is None or now > self._last:
            self._last = now

    def wait_time(self, n: float, now: float) -> float:
        """Seconds to wait from `now` until `n` tokens are available (0 when they are).

        A request larger than the burst is allowed once the bucket is full, then leaves it in debt, so a
        batch bigger than the burst still goes out and the long-run rate holds.
        """
        if self.rate <= 0:
            return 0.0
        self._refill(now)
        needed = min(n, self.burst)
        if self._tokens >= needed:
            return 0.0
        return (needed - self._tokens) / self.rate

    def take(self, n: float, now: float) -> None:
        """Spend `n` tokens at `now` (call after waiting `wait_time(n, now)`)."""
        if self.rate <= 0:
            return
        self._refill(now)
        self._tokens -= n
