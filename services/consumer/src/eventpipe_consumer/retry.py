"""Retry with exponential backoff, for writes and commits (Property 16: at most `retries` retries)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from eventpipe_common.errors import EventpipeError

T = TypeVar("T")


class BatchFailedError(EventpipeError):
    """A batch could not be written or committed after every retry; its shards are stopped, nothing skipped."""

    code = "batch_failed"


def with_retries(action: Callable[[], T], *, retries: int, base_delay: float,
                 on_failure: Callable[[int, BaseException], None] = lambda attempt, exc: None,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Run `action`; after a failure wait base_delay * 2**n and try again, `retries` times at most."""
    for attempt in range(retries + 1):
        try:
            return action()
        except Exception as exc:
            on_failure(attempt, exc)
            if attempt == retries:
                raise BatchFailedError(f"gave up after {retries + 1} attempts: {exc}", attempts=retries + 1,
                                       error=repr(exc)) from exc
            sleep(base_delay * 2 ** attempt)
    raise AssertionError("unreachable")
