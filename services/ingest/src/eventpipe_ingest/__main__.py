"""`python -m eventpipe_ingest`: serve the ingest API with uvicorn on the configured host and port."""

from __future__ import annotations

import uvicorn
from eventpipe_common.logging import configure_logging
from eventpipe_common.runtime import tune_gc

from eventpipe_ingest.app import create_app
from eventpipe_ingest.settings import IngestSettings


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
