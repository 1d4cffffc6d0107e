"""Process-wide tuning the long-running services (ingest, consumer) apply once they have started."""

from __future__ import annotations

import gc

# Young-generation collections every 10,000 net container allocations instead of 700: an ingest request or a
# consumer commit allocates thousands of short-lived objects that reference counting frees anyway, and the
# default threshold ran collections over and over, plus occasional full ones over the whole heap
# (docs/benchmarks.md, W2 and Consumer). Garbage in reference cycles is still collected, only in larger steps.
GC_THRESHOLDS = (10_000, 20, 20)


def tune_gc() -> None:
    """Fewer collections, and none over the objects that live as long as the process (modules, the app): call
    it once the process has imported and built what it keeps."""
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()
