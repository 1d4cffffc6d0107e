"""Open routes for the platform: liveness, readiness (stream and job store) and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from eventpipe_ingest.api import API_PREFIX
from eventpipe_ingest.api.deps import services_of
from eventpipe_ingest.models import Health, Readiness

router = APIRouter(prefix=API_PREFIX)


@router.get("/health", response_model=Health)
async def health() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get("/ready", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "The stream or the job store is unreachable."}})
async def ready(request: Request) -> JSONResponse:
    """Readiness: the stream exists and the job store answers."""
    services = services_of(request)
    checks = {"stream": "ok", "job_store": "ok"}
    try:
        await asyncio.wait_for(services.kinesis.describe_stream_summary(StreamName=services.settings.stream_name), 5)
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure, it never raises
        checks["stream"] = f"unavailable: {type(exc).__name__}"
    try:
        await asyncio.wait_for(asyncio.to_thread(services.require_store().ping), 5)
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure, it never raises
        checks["job_store"] = f"unavailable: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(Readiness(status="ready" if ok else "not ready", checks=checks).model_dump(),
                        status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(services_of(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
