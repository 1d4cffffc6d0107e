"""What the local stack does when a child process exits, and when the transform loop runs: pure decisions.

The I/O side (stack.py, transform_loop.py) asks these functions and acts; keeping the decisions here lets the
tests cover restart storms, shutdown and the snapshot trigger without starting processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Restart:
    """Start the component again after `delay` seconds."""

    delay: float


@dataclass(frozen=True)
class GiveUp:
    """Stop the whole stack: the component keeps failing; `reason` says which and how."""

    reason: str


@dataclass(frozen=True)
class LetExit:
    """The stack is stopping: an exit is expected."""


Action = Restart | GiveUp | LetExit


@dataclass(frozen=True)
class RestartPolicy:
    """Restart a crashed component with exponential backoff, at most `max_restarts` times per `window` seconds."""

    max_restarts: int = 5
    window: float = 300.0
    base_delay: float = 1.0
    max_delay: float = 30.0

    def decide(self, name: str, exit_code: int | None, restarts: Sequence[float], now: float,
               stopping: bool) -> Action:
        """`restarts` are the monotonic times of this component's earlier restarts."""
        if stopping:
            return LetExit()
        recent = [t for t in restarts if now - t <= self.window]
        if len(recent) >= self.max_restarts:
            return GiveUp(f"{name} exited with code {exit_code} after {len(recent)} restarts within "
                          f"{self.window:.0f}s; see its log")
        return Restart(min(self.max_delay, self.base_delay * 2 ** len(recent)))


def stop_order(start_order: Sequence[str]) -> list[str]:
    """Stop in reverse start order: producers of work first, the stream server last."""
    return list(reversed(start_order))


def should_transform(seen: str | None, current: str | None, last_finished: float | None, now: float,
                     min_interval: float, changed_at: float | None = None, settle: float = 0.0) -> bool:
    """Run dbt + GX when the tables have a snapshot we have not modelled yet, at most once per `min_interval`,
    and only once the tables stopped changing for `settle` seconds (a burst of commits makes one run, not many).

    `seen` and `current` are fingerprints of the tables' current snapshots (None: no snapshot yet);
    `changed_at` is when `current` was first observed.
    """
    if current is None or current == seen:
        return False
    if changed_at is not None and now - changed_at < settle:
        return False
    return last_finished is None or now - last_finished >= min_interval
