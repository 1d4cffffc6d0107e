"""The W2 peer (docs/workloads.md): a minimal FastAPI app that only parses the body with json.loads and answers 202.

    python -m bench.w2_peer PORT [--default-gc]

Served like the ingest service (uvicorn's defaults: httptools, uvloop; no access log), and with the same
garbage-collector settings as `python -m eventpipe_ingest` unless --default-gc, so the peer stays the
framework's own ceiling rather than a handicapped one.
"""

from __future__ import annotations

import argparse
import gc
import json

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

# The same values as eventpipe_common.runtime.GC_THRESHOLDS (not imported: the peer runs no project code).
GC_THRESHOLDS = (10_000, 20, 20)

app = FastAPI()


@app.post("/api/v1/ingest")
async def ingest(request: Request) -> JSONResponse:
    events = json.loads(await request.body())
    return JSONResponse({"received": len(events)}, status_code=202)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("port", type=int)
    parser.add_argument("--default-gc", action="store_true", help="keep Python's default collector settings")
    args = parser.parse_args()
    if not args.default_gc:
        gc.set_threshold(*GC_THRESHOLDS)
        gc.freeze()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
