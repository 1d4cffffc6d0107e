"""The W2 peer (WORKLOAD.md): a minimal FastAPI app that only parses the body with json.loads and answers 202.

    python -m bench.w2_peer PORT
"""

from __future__ import annotations

import json
import sys

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/api/v1/ingest")
async def ingest(request: Request) -> JSONResponse:
    events = json.loads(await request.body())
    return JSONResponse({"received": len(events)}, status_code=202)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
