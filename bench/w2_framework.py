"""The framework's CPU per ingest request, in process: POST /api/v1/ingest through the app's whole ASGI stack.

    python -m bench.w2_framework [--rounds 7] [--calls 2000]

W2 (bench/w2.py) measures a whole request, whose 2-3 ms swing by more than the framework's share on a shared
machine; this measures only the way from the ASGI call to the route and back. Three apps built by `create_app`:
as shipped (`fastpath`: api/fastpath.py hands the request to the route; FastAPI's native telemetry off), the same
with FastAPI's telemetry on (`fastpath+telemetry`, FastAPI's default), and without the fast path (`framework`:
router, FastAPI's request handler, Starlette's exception middleware). No lifespan runs, so the route answers 503
not_ready once it has read the body: the route's work and the error handler are the same on every variant and the
differences are the framework's. Calls are interleaved per round, process CPU time per call, medians over rounds.
Not a test: nothing is asserted beyond every answer being the 503.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from eventpipe_common.logging import configure_logging
from eventpipe_ingest.app import create_app
from eventpipe_ingest.settings import IngestSettings
from fastapi import FastAPI
from starlette.types import Message

BODY = b"[" + b",".join([b'{"event_id":"e"}'] * 10) + b"]"
HEADERS = [(b"host", b"bench"), (b"content-type", b"application/json"),
           (b"content-length", str(len(BODY)).encode())]


def build(job_store: Path, *, fast_path: bool, telemetry: bool) -> FastAPI:
    app = create_app(IngestSettings.model_validate({"job_store_dsn": f"sqlite:///{job_store}",
                                                    "ingest_auth_enabled": False}))
    if not fast_path:
        app.user_middleware = [m for m in app.user_middleware if getattr(m.cls, "__name__", "") != "RouteFastPath"]
    if telemetry:
        app._telemetry.update(tracing=True, metrics=True, logs=True)  # FastAPI's default
    return app


async def cpu_per_call(app: FastAPI, calls: int) -> float:
    """Process CPU microseconds per POST /api/v1/ingest."""
    statuses: set[int] = set()

    async def receive() -> Message:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    started = time.process_time()
    for _ in range(calls):
        scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/api/v1/ingest", "raw_path": b"/api/v1/ingest", "root_path": "", "query_string": b"",
            "headers": HEADERS, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
        await app(scope, receive, send)
    elapsed = time.process_time() - started
    if statuses != {503}:
        raise RuntimeError(f"expected only 503 not_ready, got {statuses}")
    return elapsed / calls * 1e6


async def run(rounds: int, calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        apps = {"fastpath": build(Path(tmp, "a.db"), fast_path=True, telemetry=False),
                "fastpath+telemetry": build(Path(tmp, "b.db"), fast_path=True, telemetry=True),
                "framework": build(Path(tmp, "c.db"), fast_path=False, telemetry=True)}
        for app in apps.values():
            await cpu_per_call(app, calls // 10)  # warm-up
        results: dict[str, list[float]] = {name: [] for name in apps}
        for r in range(rounds):
            order = list(apps) if r % 2 == 0 else list(reversed(apps))
            for name in order:
                results[name].append(await cpu_per_call(apps[name], calls))
    for name, values in results.items():
        print(f"{name}: median {statistics.median(values):.1f} us CPU per request, "
              f"spread {min(values):.1f}-{max(values):.1f} ({rounds} rounds of {calls})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    configure_logging("ingest", "CRITICAL")  # the 503s are logged at error level; the log is not measured
    asyncio.run(run(args.rounds, args.calls))


if __name__ == "__main__":
    main()
