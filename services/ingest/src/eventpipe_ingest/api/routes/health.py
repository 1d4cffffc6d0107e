"""Open routes for the platform: liveness, readiness (stream and job store) and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from eventpipe_ingest.api import API_PREFIX
from eventpipe_ingest.api.deps import services_of
from eventpipe_ingest.api.errors import problem_response
from eventpipe_ingest.models import Health, Problem, Readiness

router = APIRouter(prefix=API_PREFIX, tags=["operations"])
# Prometheus metrics on the API port, open: only when no separate metrics port is configured (local use).
metrics_router = APIRouter(prefix=API_PREFIX, tags=["operations"])


@router.get("/health", response_model=Health, operation_id="getHealth")
async def health() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, operation_id="getReadiness",
            responses={503: {"model": Problem, "description": "The stream or the job store is unreachable "
                                                              "(`checks` says which)."}})
async def ready(request: Request) -> Response:
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
    failing = {name: check for name, check in checks.items() if check != "ok"}
    if failing:
        detail = "; ".join(f"{name}: {check}" for name, check in failing.items())
        return problem_response(request, 503, "not_ready", detail, services.retry_after, checks=checks)
    return JSONResponse(Readiness(status="ready", checks=checks).model_dump())


@metrics_router.get("/metrics", response_class=Response, operation_id="getMetrics",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(services_of(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
