"""POST /ingest straight to its route (api/fastpath.py): which requests take it, and that its answers and request
counts are the framework's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from eventpipe_ingest.app import create_app
from eventpipe_ingest.settings import IngestSettings
from starlette.types import Receive, Scope, Send

from tests.helpers.ingest_events import valid_event


def test_only_post_on_the_exact_path_skips_the_framework(tmp_path: Path) -> None:
    """The fast path is put in front of an app that records what reaches it (a stand-in: which requests the
    framework sees cannot be observed over HTTP). POST /api/v1/ingest never reaches it and is answered by the
    route with the app's own problem+json (503 not_ready: no lifespan ran, so no job store); everything else
    does reach it."""
    app = create_app(IngestSettings.model_validate(
        {"job_store_dsn": f"sqlite:///{tmp_path}/jobs.db", "ingest_auth_enabled": False}))
    app.middleware_stack = app.build_middleware_stack()  # the real stack, to find the fast path in it
    fast: Any = app.middleware_stack
    while type(fast).__name__ != "RouteFastPath":
        fast = fast.app
    seen: list[tuple[str, str]] = []

    async def framework(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope["method"], scope["path"]))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    fast.app = framework

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.post("/api/v1/ingest", json=[{"event_id": "e"}]),
                    await client.post("/api/v1/ingest/", json=[]),
                    await client.get("/api/v1/ingest"),
                    await client.post("/api/v1/status/x"),
                    await client.get("/api/v1/health")]

    ingest, *others = asyncio.run(run())
    assert ingest.status_code == 503
    assert ingest.headers["content-type"] == "application/problem+json"
    assert ingest.json()["code"] == "not_ready" and ingest.json()["instance"] == "/api/v1/ingest"
    assert ingest.headers["Retry-After"]
    assert [r.status_code for r in others] == [299] * 4
    assert seen == [("POST", "/api/v1/ingest/"), ("GET", "/api/v1/ingest"), ("POST", "/api/v1/status/x"),
                    ("GET", "/api/v1/health")]
    registry = app.state.services.metrics.registry
    assert registry.get_sample_value("eventpipe_ingest_requests_total",
                                     {"route": "/api/v1/ingest", "method": "POST", "status": "503"}) == 1


def test_cors_and_request_counts_on_the_fast_path(ingest_app: Callable[..., Any]) -> None:
    """Over real HTTP: CORS still answers for POST /ingest (it runs before the fast path), and each answer of the
    route is counted once under its route template and status, as the framework's way counts them."""
    origin = {"Origin": "https://app.example"}
    with ingest_app(ingest_cors_origins=["https://app.example"]) as client:
        accepted = client.post("/api/v1/ingest", json=[valid_event(1)], headers=origin)
        assert accepted.status_code == 202, accepted.text
        assert accepted.headers["access-control-allow-origin"] == "https://app.example"
        assert accepted.headers["location"] == f"/api/v1/status/{accepted.json()['job_id']}"
        refused = client.post("/api/v1/ingest", json=[valid_event(2)], headers={**origin, "Authorization": "x"})
        assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["access-control-allow-origin"] == "https://app.example"
        unsupported = client.post("/api/v1/ingest", content=b"x", headers={"Content-Type": "text/plain"})
        assert unsupported.status_code == 415 and unsupported.json()["code"] == "unsupported_media_type"
        text = client.get("/api/v1/metrics").text
    for status in ("202", "401", "415"):
        line = f'eventpipe_ingest_requests_total{{method="POST",route="/api/v1/ingest",status="{status}"}} 1.0'
        assert line in text.splitlines(), (status, text)
