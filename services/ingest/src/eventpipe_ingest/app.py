"""The ingest app's factory: settings, services, routers and the lifespan that opens the stream and job store.

`create_app(settings)` builds the app; `python -m eventpipe_ingest` serves it with uvicorn. The routes live in
eventpipe_ingest.api.routes (ingest, status, health), what they depend on in eventpipe_ingest.api.deps, the
error answers in eventpipe_ingest.api.errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import eventpipe_core
from aiobotocore.session import get_session
from eventpipe_common.errors import ConfigurationError
from eventpipe_common.logging import get_logger
from eventpipe_jobs.store import JobStore
from eventpipe_jobs.writer import JobWriter
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, APIRouter
from fastapi.telemetry import TelemetryConfig
from prometheus_client import start_http_server
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventpipe_ingest.api import API_PREFIX
from eventpipe_ingest.api.deps import Services
from eventpipe_ingest.api.errors import PROBLEM_JSON, add_error_handlers, problem_responses_in_spec
from eventpipe_ingest.api.fastpath import RouteFastPath
from eventpipe_ingest.api.routes import health, ingest, status
from eventpipe_ingest.auth import load_api_keys
from eventpipe_ingest.coalesce import CoalescedTransport
from eventpipe_ingest.kinesis import client_config, open_transport
from eventpipe_ingest.metrics import IngestMetrics
from eventpipe_ingest.publisher import KinesisPublisher
from eventpipe_ingest.settings import IngestSettings
from eventpipe_ingest.shards import ShardMapCache, aiobotocore_list_shards
from eventpipe_ingest.transport import PutRecordsTransport

log = get_logger(component="ingest")

API = API_PREFIX

OPENAPI_TAGS = [
    {"name": "ingest", "description": "Send events."},
    {"name": "jobs", "description": "Follow what became of a request's events."},
    {"name": "operations", "description": "Liveness, readiness and metrics, for the platform (no API key)."},
]
DESCRIPTION = f"""Events in (JSON array, NDJSON, CSV; gzip accepted), validated, published to Kinesis.

Every answer that is not 2xx is an RFC 9457 problem details object (`{PROBLEM_JSON}`): `type`, `title`,
`status`, `detail`, `instance`, `code`, and the extensions that apply (`line`, `column`, `job_id`, `limit`,
`errors`, `received`, `rejected`, `rejects`); FastAPI's own 404, 405 and 422 included."""

NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

# A wrapper around the PutRecords transport; tests use it to inject faults the emulators cannot produce.
TransportWrapper = Callable[[PutRecordsTransport], PutRecordsTransport]


def create_app(settings: IngestSettings | None = None, *, wrap_transport: TransportWrapper | None = None) -> FastAPI:
    """The ingest app. Settings default to the environment (EVENTPIPE_*)."""
    settings = settings or IngestSettings.model_validate({})
    metrics = IngestMetrics()
    api_keys = load_api_keys(
        settings.ingest_api_keys_file,
        settings.ingest_api_keys.get_secret_value() if settings.ingest_api_keys else None)
    services = Services(settings=settings, metrics=metrics, api_keys=api_keys, schema=_load_schema(settings),
                        retry_after={"Retry-After": str(settings.ingest_retry_after_seconds)})
    metrics.in_flight.set_function(lambda: services.in_flight)
    _check_partition_key_field(settings, services.schema)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await _open(services, stack, wrap_transport)
            yield

    app = FastAPI(
        title="eventpipe ingest", version="0.1.0", lifespan=lifespan,
        description=DESCRIPTION,
        openapi_url=f"{API}/openapi.json", docs_url=f"{API}/docs", redoc_url=None,
        # Off: FastAPI's native OpenTelemetry looks up the global tracer, meter and logger providers on every
        # request (~8 us, bench/w2_framework.py); eventpipe exports Prometheus metrics and JSON logs instead.
        telemetry=NO_TELEMETRY,
    )
    app.state.services = services
    add_error_handlers(app)
    for router in (ingest.router, status.router, health.router):
        app.include_router(router)
    # Middleware added last runs first: CORS, then POST /ingest straight to its route (api.fastpath), then the
    # request count of every other request.
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    app.add_middleware(RouteFastPath, fastapi=app, route=_route(ingest.router, ingest.ingest), metrics=metrics)
    if settings.ingest_cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.ingest_cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "Content-Encoding"])
    if not settings.ingest_metrics_port:
        app.include_router(health.metrics_router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problem_responses_in_spec(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes,
                tags=OPENAPI_TAGS))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the spec
    return app


async def _open(services: Services, stack: AsyncExitStack, wrap_transport: TransportWrapper | None) -> None:
    """The job store, its writer, the Kinesis client and the publisher; closed in reverse by `stack`."""
    settings = services.settings
    if settings.ingest_metrics_port:
        server, _ = start_http_server(settings.ingest_metrics_port, settings.ingest_metrics_host,
                                      services.metrics.registry)
        stack.callback(server.server_close)
        stack.callback(server.shutdown)
        log.info("metrics served", url=f"http://{settings.ingest_metrics_host}:{settings.ingest_metrics_port}/metrics")
    services.store = await asyncio.to_thread(JobStore.from_dsn, settings.resolved_job_store_dsn())
    stack.callback(services.store.close)
    services.writer = JobWriter(services.store)
    stack.push_async_callback(services.writer.close)
    session = get_session()
    services.kinesis = await stack.enter_async_context(session.create_client(
        "kinesis", region_name=settings.aws_region, endpoint_url=settings.kinesis_endpoint_url,
        config=client_config(settings)))
    transport = await open_transport(settings, session, services.kinesis, stack)
    coalesced = CoalescedTransport(wrap_transport(transport) if wrap_transport else transport,
                                   max_in_flight=settings.ingest_put_records_in_flight,
                                   on_call=lambda callers: _count_call(services.metrics, callers))
    stack.push_async_callback(coalesced.aclose)  # before the HTTP client it calls is closed
    services.publisher = KinesisPublisher(
        coalesced, services.metrics,
        concurrency=settings.ingest_publish_concurrency, retry_base=settings.ingest_retry_base_seconds,
        retry_max=settings.ingest_retry_max_seconds,
        shards=ShardMapCache(aiobotocore_list_shards(services.kinesis, settings.stream_name)),
        pack_max_bytes=settings.ingest_pack_max_bytes)
    if settings.ingest_auth_enabled and not len(services.api_keys):
        log.warning("no API keys configured: every ingest and status request will get 401")
    log.info("ingest started", stream=settings.stream_name, api_keys=len(services.api_keys),
             kinesis_client=settings.ingest_kinesis_client.value, reject_mode=settings.ingest_reject_mode.value)


def _load_schema(settings: IngestSettings) -> eventpipe_core.Schema | None:
    try:
        text = settings.load_schema_json()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the pipeline schema {settings.schema_path}: {exc.strerror}",
                                 setting="schema_path") from exc
    if text is None:
        return None
    try:
        return eventpipe_core.Schema(text)
    except eventpipe_core.SchemaError as exc:
        raise ConfigurationError(f"pipeline schema {settings.schema_path}: {exc}", setting="schema_path") from exc


def _check_partition_key_field(settings: IngestSettings, schema: eventpipe_core.Schema | None) -> None:
    """The core resolves the partition key field on every request; resolving it once here makes a field that is
    neither an envelope field nor a promoted column fail at start-up, not on the first request."""
    try:
        eventpipe_core.ingest_batch(b"", job_id="start-up", schema=schema,
                                    partition_key_field=settings.ingest_partition_key_field)
    except eventpipe_core.SchemaError as exc:
        raise ConfigurationError(f"EVENTPIPE_INGEST_PARTITION_KEY_FIELD: {exc}",
                                 setting="ingest_partition_key_field") from exc


def _route(router: APIRouter, endpoint: Callable[..., Any]) -> APIRoute:
    """The router's route of `endpoint`."""
    return next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint)


def _count_call(metrics: IngestMetrics, callers: int) -> None:
    metrics.kinesis_calls.inc()
    if callers > 1:
        metrics.kinesis_merged_calls.inc(callers - 1)


class RequestMetricsMiddleware:
    """Counts every response by route template, method and status (pure ASGI); POST /ingest is counted by
    api.fastpath.RouteFastPath, which answers it before this runs."""

    def __init__(self, app: ASGIApp, metrics: IngestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
