"""`python -m eventpipe_ingest`: serve the ingest API with uvicorn on the configured host and port."""

from __future__ import annotations

import gc

import uvicorn
from eventpipe_common.logging import configure_logging

from eventpipe_ingest.app import create_app
from eventpipe_ingest.settings import IngestSettings

# Young-generation collections every 10,000 net container allocations instead of 700: a 500-event request
# allocates thousands of short-lived objects that reference counting frees anyway, and the default threshold
# ran a collection per request plus an occasional full one over the whole heap (docs/benchmarks.md, W2).
# Garbage in reference cycles is still collected, only in larger steps.
GC_THRESHOLDS = (10_000, 20, 20)


def tune_gc() -> None:
    """Fewer collections, and none over the objects that live as long as the process (modules, the app)."""
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()


def main() -> None:
    settings = IngestSettings.model_validate({})
    configure_logging("ingest", settings.log_level)
    app = create_app(settings)
    tune_gc()
    # log_config=None: uvicorn's loggers go through the JSON handler configure_logging installed.
    uvicorn.run(app, host=settings.ingest_host, port=settings.ingest_port, log_config=None,
                access_log=False, proxy_headers=True)


if __name__ == "__main__":
    main()
