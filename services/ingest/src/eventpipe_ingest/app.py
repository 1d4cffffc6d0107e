"""The ingest HTTP API (FastAPI): validate with the Rust core, publish to Kinesis, answer 202 with a job id.

`create_app(settings)` builds the app; `python -m eventpipe_ingest` serves it with uvicorn. Routes:
POST /api/v1/ingest, GET /api/v1/status/{job_id} (API key required), GET /api/v1/health, /api/v1/ready,
/api/v1/metrics (open). API keys: see eventpipe_ingest.auth (EVENTPIPE_INGEST_API_KEYS_FILE, lines
`name:sha256hex`; header `Authorization: Bearer <key>` or `X-API-Key: <key>`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import eventpipe_core
import orjson
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from eventpipe_common.errors import ConfigurationError, EventpipeError
from eventpipe_common.logging import get_logger
from eventpipe_jobs.schema import JobState, NewJob
from eventpipe_jobs.store import JobStore
from eventpipe_jobs.writer import JobWriter
from fastapi import Depends, FastAPI, Path, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventpipe_ingest.auth import ApiKeys, load_api_keys
from eventpipe_ingest.body import BadBodyError, BodyTooLargeError, UnsupportedMediaTypeError, decode_content, format_for
from eventpipe_ingest.coalesce import CoalescedPutRecords
from eventpipe_ingest.httpclient import HttpClient
from eventpipe_ingest.kinesis import LeanPutRecords
from eventpipe_ingest.metrics import IngestMetrics
from eventpipe_ingest.models import (
    ErrorBody,
    Health,
    IngestAccepted,
    IngestRefused,
    JobStatus,
    Readiness,
    RejectOut,
)
from eventpipe_ingest.publisher import KinesisPublisher, PublishError, PutRecords
from eventpipe_ingest.records import MAX_BYTES_PER_RECORD, OutgoingRecord
from eventpipe_ingest.rejects import RefusedLine, reject_record
from eventpipe_ingest.settings import IngestSettings, KinesisClient, RejectMode
from eventpipe_ingest.shards import ShardMapCache, aiobotocore_list_shards

# component bound here too: a server run in a thread of its own (tests) does not share the contextvars of the
# thread that configured logging.
log = get_logger(component="ingest")

API = "/api/v1"
JSON_ARRAY_EXAMPLE = [{"event_id": "e-1", "event_type": "page_view", "timestamp": "2026-11-27T13:45:12Z",
                       "user_id": "u_1", "properties": {"page": "/"}}]
# The body is read raw (several formats, gzip), so the OpenAPI request body is declared by hand.
INGEST_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            # Elements that are not objects are answered as rejects with their index, so any element is allowed.
            "application/json": {"schema": {"type": "array", "items": {}},
                                 "example": JSON_ARRAY_EXAMPLE},
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}

# Bodies up to this size go through the Rust core on the event loop's thread: the hand-off to a worker thread
# costs more CPU than the core's own work on a body of this size (docs/benchmarks.md, W2). Larger bodies go to
# a thread (the core releases the GIL) so the loop is never held for long.
INLINE_CORE_MAX_BYTES = 1024 * 1024

# A wrapper around the Kinesis client's PutRecords; tests use it to inject faults the emulators cannot produce.
PutRecordsWrapper = Callable[[PutRecords], PutRecords]


class ApiError(Exception):
    """An answer other than 2xx, with its status, body and headers."""

    def __init__(self, status: int, body: ErrorBody | IngestRefused, headers: dict[str, str] | None = None) -> None:
        super().__init__(body.message)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _error(status: int, exc: EventpipeError, headers: dict[str, str] | None = None, **extra: Any) -> ApiError:
    details = {k: v for k, v in exc.details.items() if k not in ("line", "column", "job_id")}
    return ApiError(status, ErrorBody(code=exc.code, message=exc.message, line=exc.details.get("line"),
                                      column=exc.details.get("column"), details=details or None, **extra),
                    headers)


@dataclass
class Services:
    """What the routes need, built in the lifespan (dependency injection through app.state)."""

    settings: IngestSettings
    metrics: IngestMetrics
    api_keys: ApiKeys
    schema: eventpipe_core.Schema | None
    store: JobStore | None = None
    writer: JobWriter | None = None
    publisher: KinesisPublisher | None = None
    kinesis: Any = None
    in_flight: int = 0
    body_bytes_in_flight: int = 0  # decoded bytes of the requests being processed


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


class RequestMetricsMiddleware:
    """Counts every response by route template, method and status (pure ASGI: cheap on the hot path)."""

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


def create_app(settings: IngestSettings | None = None, *, wrap_put_records: PutRecordsWrapper | None = None) -> FastAPI:
    """The ingest app. Settings default to the environment (EVENTPIPE_*)."""
    settings = settings or IngestSettings.model_validate({})
    metrics = IngestMetrics()
    api_keys = load_api_keys(
        settings.ingest_api_keys_file,
        settings.ingest_api_keys.get_secret_value() if settings.ingest_api_keys else None)
    services = Services(settings=settings, metrics=metrics, api_keys=api_keys, schema=_load_schema(settings))
    metrics.in_flight.set_function(lambda: services.in_flight)
    _check_partition_key_field(settings, services.schema)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            services.store = await asyncio.to_thread(JobStore.from_dsn, settings.resolved_job_store_dsn())
            stack.callback(services.store.close)
            services.writer = JobWriter(services.store)
            stack.push_async_callback(services.writer.close)
            config = AioConfig(
                connect_timeout=min(5.0, settings.ingest_publish_deadline_seconds),
                read_timeout=settings.ingest_publish_deadline_seconds,
                retries={"total_max_attempts": 1},  # our own retry loop handles partial failures and throttling
                parameter_validation=False,  # entries are built within the limits here; botocore's check is slow
                max_pool_connections=max(10, settings.ingest_max_concurrent_requests),
            )
            session = get_session()
            services.kinesis = await stack.enter_async_context(session.create_client(
                "kinesis", region_name=settings.aws_region, endpoint_url=settings.kinesis_endpoint_url,
                config=config))
            put_records = await _put_records_call(settings, session, services.kinesis, stack)
            coalesced = CoalescedPutRecords(wrap_put_records(put_records) if wrap_put_records else put_records,
                                            max_in_flight=settings.ingest_put_records_in_flight,
                                            on_call=lambda callers: _count_call(metrics, callers))
            stack.push_async_callback(coalesced.aclose)  # before the HTTP client it calls is closed

            services.publisher = KinesisPublisher(
                coalesced, metrics,
                concurrency=settings.ingest_publish_concurrency, retry_base=settings.ingest_retry_base_seconds,
                retry_max=settings.ingest_retry_max_seconds,
                shards=ShardMapCache(aiobotocore_list_shards(services.kinesis, settings.stream_name)),
                pack_max_bytes=settings.ingest_pack_max_bytes)
            if settings.ingest_auth_enabled and not len(api_keys):
                log.warning("no API keys configured: every ingest and status request will get 401")
            log.info("ingest started", stream=settings.stream_name, api_keys=len(api_keys),
                     kinesis_client=settings.ingest_kinesis_client.value,
                     reject_mode=settings.ingest_reject_mode.value)
            yield

    app = FastAPI(
        title="eventpipe ingest", version="0.1.0", lifespan=lifespan,
        description="Events in (JSON array, NDJSON, CSV; gzip accepted), validated, published to Kinesis.",
        openapi_url=f"{API}/openapi.json", docs_url=f"{API}/docs", redoc_url=None,
    )
    app.state.services = services
    if settings.ingest_cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.ingest_cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "Content-Encoding"])
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        cause = exc.__cause__
        _log_failure(request, exc.status, exc.body.code, exc.body.message,
                     f"{type(cause).__name__}: {cause}"[:500] if cause is not None else exc.body.code,
                     getattr(exc.body, "job_id", None))
        return JSONResponse(exc.body.model_dump(exclude_none=True), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        _log_failure(request, 500, "internal_error", "an unexpected error", f"{type(exc).__name__}: {exc}"[:500],
                     None, exc_info=exc)
        return JSONResponse({"code": "internal_error", "message": "an unexpected error; it is logged"},
                            status_code=500)

    bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
    header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key in X-API-Key.")

    def authenticate(x_api_key: str | None, authorization: str | None) -> str:
        """The name of the caller's API key; 401 without a valid one. The key itself is never logged."""
        if not settings.ingest_auth_enabled:
            return "anonymous"
        key = x_api_key
        if not key and authorization:
            scheme, _, credentials = authorization.partition(" ")
            key = credentials.strip() if scheme.lower() == "bearer" else None
        name = api_keys.verify(key) if key else None
        if name is None:
            raise ApiError(401, ErrorBody(code="unauthorized", message="a valid API key is required "
                                          "(Authorization: Bearer <key> or X-API-Key: <key>)"),
                           {"WWW-Authenticate": "Bearer"})
        return name

    async def client_name(credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                          x_api_key: str | None = Depends(header_key)) -> str:
        """The API key check as FastAPI dependencies, which also declare the security schemes in the spec."""
        return authenticate(x_api_key, f"Bearer {credentials.credentials}" if credentials else None)

    retry_after = {"Retry-After": str(settings.ingest_retry_after_seconds)}
    error_responses: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorBody, "description": "Missing or invalid API key."},
    }

    # The ingest route checks the key itself (`authenticate`): FastAPI's three dependencies are a visible share
    # of a request's CPU (docs/benchmarks.md, W2); the status route's dependencies declare the same schemes in the spec.
    @app.post(
        f"{API}/ingest", status_code=202, response_model=IngestAccepted,
        openapi_extra={**INGEST_REQUEST_BODY, "security": [{"HTTPBearer": []}, {"APIKeyHeader": []}]},
        responses={
            **error_responses,
            400: {"model": ErrorBody, "description": "The body cannot be parsed (line and column given) or is empty."},
            413: {"model": ErrorBody, "description": "Body or event count over the limit."},
            415: {"model": ErrorBody, "description": "Unsupported Content-Type or Content-Encoding."},
            422: {"model": IngestRefused, "description": "Reject mode `whole`: some events invalid, none taken."},
            429: {"model": ErrorBody, "description": "Too many requests in flight; retry after Retry-After."},
            503: {"model": ErrorBody, "description": "The stream did not acknowledge in time; the job failed."},
        },
    )
    async def ingest(request: Request) -> Response:
        """Validate the events and publish the valid ones; 202 only once Kinesis acknowledged every one."""
        client = authenticate(request.headers.get("x-api-key"), request.headers.get("authorization"))
        if services.in_flight >= settings.ingest_max_concurrent_requests:
            metrics.backpressure.inc()
            raise ApiError(429, ErrorBody(code="too_many_requests", message="too many ingest requests in flight"),
                           retry_after)
        services.in_flight += 1  # the gauge reads it (metrics.in_flight.set_function)
        try:
            return await _ingest(request, client)
        finally:
            services.in_flight -= 1

    async def _ingest(request: Request, client: str) -> Response:
        writer = _writer()  # before anything is published
        try:
            fmt = format_for(request.headers.get("content-type"))
            body = await _read_body(request, settings.ingest_max_body_bytes)
            metrics.body_bytes.inc(len(body))
            body = decode_content(body, request.headers.get("content-encoding"), settings.ingest_max_body_bytes)
        except UnsupportedMediaTypeError as exc:
            raise _error(415, exc) from exc
        except BodyTooLargeError as exc:
            raise _error(413, exc) from exc
        except BadBodyError as exc:
            raise _error(400, exc) from exc

        # Memory is bounded by the limits: processing a body takes a multiple of its size (up to ~16x for 10,000
        # rejects, bench/ingest_memory.py), so the decoded bytes being processed at once are capped; one request
        # is always let through, so a body within the size limit is never refused for its size alone.
        size = len(body)
        if services.body_bytes_in_flight and \
                services.body_bytes_in_flight + size > settings.ingest_max_body_bytes_in_flight:
            metrics.backpressure.inc()
            raise ApiError(429, ErrorBody(code="too_many_requests", message=(
                f"{services.body_bytes_in_flight} body bytes are being processed; this body's {size} would pass "
                f"the limit of {settings.ingest_max_body_bytes_in_flight}")), retry_after)
        services.body_bytes_in_flight += size
        try:
            return await _ingest_body(request, client, writer, fmt, body)
        finally:
            services.body_bytes_in_flight -= size

    async def _ingest_body(request: Request, client: str, writer: JobWriter, fmt: str, body: bytes) -> Response:
        """A decoded body to its 202, or its refusal."""
        job_id = str(uuid.uuid4())
        request.state.job_id = job_id  # for the log of a failure from here on (_log_failure)
        shard_map = await _publisher().shard_map()
        ingest_batch = functools.partial(
            eventpipe_core.ingest_batch, body, job_id=job_id, format=fmt, schema=services.schema,
            partition_key_field=settings.ingest_partition_key_field,
            shard_starts=shard_map.starts if shard_map else None, pack_max_bytes=settings.ingest_pack_max_bytes,
            max_record_bytes=MAX_BYTES_PER_RECORD, max_events=settings.ingest_max_events)
        try:
            result = ingest_batch() if len(body) <= INLINE_CORE_MAX_BYTES else await asyncio.to_thread(ingest_batch)
        except eventpipe_core.ParseError as exc:
            raise ApiError(400, ErrorBody(code="parse_error", message=str(exc), line=exc.line,
                                          column=exc.column)) from exc
        except ValueError as exc:  # the core's EventpipeError is a ValueError; so is undecodable text
            raise ApiError(400, ErrorBody(code="bad_request", message=str(exc))) from exc

        if result.received == 0:
            raise ApiError(400, ErrorBody(code="empty_body", message="the body holds no events"))
        unparsable = _unparsable(result)
        if unparsable is not None:
            raise ApiError(400, unparsable)
        if result.received > settings.ingest_max_events:
            raise ApiError(413, ErrorBody(code="payload_too_large", message=(
                f"{result.received} events in one request; the limit is {settings.ingest_max_events}")))

        shard_ids = shard_map.shard_ids if shard_map else ()
        records = [OutgoingRecord(data, key, shard_ids[shard] if shard is not None else None)
                   for data, key, shard, _ in result.records]
        refused = [_refused(r) for r in result.rejects]
        rejects = [reject for reject, _ in refused]
        if rejects:
            metrics.events_rejected.inc(len(rejects))
        if result.duplicates:
            metrics.events_duplicate.inc(result.duplicates)

        if rejects and settings.ingest_reject_mode is RejectMode.WHOLE:
            log.info("request refused whole", client=client, received=result.received, rejected=len(rejects))
            raise ApiError(422, IngestRefused(
                code="invalid_events", message=f"{len(rejects)} of {result.received} events are invalid; "
                "this pipeline accepts a request only when every event is valid", received=result.received,
                rejected=len(rejects), rejects=[RejectOut.model_validate(r) for r in rejects]))

        # The refused lines travel to raw_events_rejected in the same PutRecords flow as the events.
        outgoing = records + [OutgoingRecord(reject_record(line, job_id), job_id) for _, line in refused]
        accepted = result.accepted
        # The job row is written once, after Kinesis answered: published (or committed when there is no event
        # for the consumer to count), or failed by _publish. The consumer may count the job's events before
        # the row exists; the store keeps those counts and folds them in when the row is created.
        state = JobState.PUBLISHED if accepted else JobState.COMMITTED
        job = NewJob(job_id, result.received, accepted, len(rejects), duplicates=result.duplicates,
                     pipeline=settings.pipeline_name, state=state)
        if outgoing:
            await _publish(job, outgoing, client)
        try:
            await writer.create(job)
        except Exception as exc:
            metrics.job_store_errors.labels("create").inc()
            # The events are in the stream but the job cannot be looked up: no 202 (it would 404 on status);
            # the client's retry is safe, consumers deduplicate on event_id.
            log.error("job store unavailable", job_id=job_id, error=type(exc).__name__, detail=str(exc)[:300])
            raise ApiError(503, ErrorBody(code="dependency_unavailable", message="the job store is unavailable"),
                           retry_after) from exc
        metrics.events_accepted.inc(accepted)
        log.info("ingested", client=client, job_id=job_id, received=result.received, accepted=accepted,
                 rejected=len(rejects), duplicates=result.duplicates)
        # IngestAccepted (response_model above declares it in the OpenAPI spec), serialized from plain values:
        # building the models and FastAPI validating them again is a visible share of a request. The schemathesis
        # test checks this body against the spec.
        answer = {"job_id": job_id, "state": state.value, "received": result.received, "accepted": accepted,
                  "rejected": len(rejects), "duplicates": result.duplicates, "rejects": rejects}
        return Response(orjson.dumps(answer), status_code=202, media_type="application/json")

    async def _publish(job: NewJob, records: list[OutgoingRecord], client: str) -> None:
        """Publish `records` until acknowledged; on failure, write the job as failed and answer 503."""
        publisher = _publisher()
        job_id = job.job_id
        deadline = settings.ingest_publish_deadline_seconds
        started = time.perf_counter()
        try:
            async with asyncio.timeout(deadline):
                await publisher.publish(records)
        except TimeoutError as exc:
            reason = f"Kinesis did not acknowledge all {len(records)} records within {deadline}s"
            written = await _fail(job, reason, "deadline", client)
            raise ApiError(503, ErrorBody(code="publish_timeout", message=reason,
                                          job_id=job_id if written else None), retry_after) from exc
        except PublishError as exc:
            reason = str(exc)
            written = await _fail(job, reason, "stream_error", client)
            raise ApiError(503, ErrorBody(code="publish_failed", message=reason,
                                          job_id=job_id if written else None), retry_after) from exc
        metrics.publish_latency.observe(time.perf_counter() - started)

    async def _fail(job: NewJob, reason: str, kind: str, client: str) -> bool:
        """Write the job as failed; False when the store could not (the 503 then names no job id)."""
        metrics.publish_failures.labels(kind).inc()
        log.warning("publish failed", client=client, job_id=job.job_id, reason=reason)
        try:
            await _writer().create(dataclasses.replace(job, state=JobState.FAILED, reason=reason))
        except Exception as exc:  # noqa: BLE001 - the client gets 503 either way; the failure is logged
            metrics.job_store_errors.labels("create_failed").inc()
            log.error("could not record the failed job", job_id=job.job_id, error=type(exc).__name__)
            return False
        return True

    def _writer() -> JobWriter:
        if services.writer is None:
            raise ApiError(503, ErrorBody(code="not_ready", message="the service is starting"), retry_after)
        return services.writer

    def _publisher() -> KinesisPublisher:
        if services.publisher is None:
            raise ApiError(503, ErrorBody(code="not_ready", message="the service is starting"), retry_after)
        return services.publisher

    def _store() -> JobStore:
        if services.store is None:
            raise ApiError(503, ErrorBody(code="not_ready", message="the service is starting"), retry_after)
        return services.store

    @app.get(f"{API}/status/{{job_id}}", response_model=JobStatus,
             responses={**error_responses, 404: {"model": ErrorBody, "description": "Unknown job id."},
                        503: {"model": ErrorBody, "description": "The job store is unavailable."}})
    async def status(job_id: str = Path(max_length=64), client: str = Depends(client_name)) -> JobStatus:
        """The state of a job: accepted, published, committed or failed, with its counts."""
        store = _store()
        try:
            job = await asyncio.to_thread(store.get, job_id)
        except Exception as exc:
            metrics.job_store_errors.labels("get").inc()
            raise ApiError(503, ErrorBody(code="dependency_unavailable", message="the job store is unavailable"),
                           retry_after) from exc
        if job is None:
            raise ApiError(404, ErrorBody(code="not_found", message=f"no job {job_id!r}", job_id=job_id[:64]))
        return JobStatus(job_id=job.job_id, state=job.state, received=job.received, accepted=job.accepted,
                         rejected=job.rejected, duplicates=job.duplicates, committed=job.committed,
                         reason=job.reason, created_at=job.created_at, updated_at=job.updated_at)

    @app.get(f"{API}/health", response_model=Health)
    async def health() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok")

    @app.get(f"{API}/ready", response_model=Readiness,
             responses={503: {"model": Readiness, "description": "The stream or the job store is unreachable."}})
    async def ready() -> JSONResponse:
        """Readiness: the stream exists and the job store answers."""
        checks = {"stream": "ok", "job_store": "ok"}
        try:
            await asyncio.wait_for(services.kinesis.describe_stream_summary(StreamName=settings.stream_name), 5)
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure, it never raises
            checks["stream"] = f"unavailable: {type(exc).__name__}"
        try:
            await asyncio.wait_for(asyncio.to_thread(_store().ping), 5)
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure, it never raises
            checks["job_store"] = f"unavailable: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(Readiness(status="ready" if ok else "not ready", checks=checks).model_dump(),
                            status_code=200 if ok else 503)

    @app.get(f"{API}/metrics", response_class=Response,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def prometheus_metrics() -> Response:
        """Prometheus text format."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _log_failure(request: Request, status: int, code: str, reason: str, error: str, job_id: str | None,
                 **extra: Any) -> None:
    """Property 38: every answer that is not a success is logged once, with the component (bound to `log`), the
    request (method, path, peer, and the job id once one was given), the reason the client was told and the error
    behind it (the exception, or the answer's code when the refusal is the error). 4xx at info (the client's
    doing), 5xx at error."""
    job_id = job_id or getattr(request.state, "job_id", None)
    peer = f"{request.client.host}:{request.client.port}" if request.client else None
    fields = {"status": status, "code": code, "reason": reason, "error": error, "job_id": job_id,
              "request": f"{request.method} {request.url.path}", "peer": peer, **extra}
    if status >= 500:
        log.error("request failed", **fields)
    else:
        log.info("request refused", **fields)


def _count_call(metrics: IngestMetrics, callers: int) -> None:
    metrics.kinesis_calls.inc()
    if callers > 1:
        metrics.kinesis_merged_calls.inc(callers - 1)


async def _put_records_call(settings: IngestSettings, session: Any, client: Any,
                            stack: AsyncExitStack) -> PutRecords:
    """The PutRecords function the publisher calls, as configured (see eventpipe_ingest.kinesis)."""
    stream_name = settings.stream_name
    if settings.ingest_kinesis_client is KinesisClient.AIOBOTOCORE:
        async def put_records(entries: list[dict[str, Any]]) -> dict[str, Any]:
            answer: dict[str, Any] = await client.put_records(StreamName=stream_name, Records=entries)
            return answer

        return put_records
    credentials = await session.get_credentials()
    if credentials is None:
        raise ConfigurationError("no AWS credentials found for Kinesis (environment, profile or role)",
                                 setting="AWS_ACCESS_KEY_ID")
    endpoint = client.meta.endpoint_url
    http = await stack.enter_async_context(HttpClient(
        endpoint, max_connections=max(10, settings.ingest_max_concurrent_requests),
        connect_timeout=min(5.0, settings.ingest_publish_deadline_seconds),
        timeout=settings.ingest_publish_deadline_seconds))
    return LeanPutRecords(credentials, endpoint, client.meta.region_name, stream_name, http)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body as sent, refusing more than `limit` bytes without reading it all into memory first."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(f"the body is {declared} bytes, over the limit of {limit} bytes", limit=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"the body is over the limit of {limit} bytes", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


_AT_COLUMN = re.compile(r" at column (\d+)")


def _unparsable(result: eventpipe_core.IngestBatch) -> ErrorBody | None:
    """A 400 body when not one event of the request could be parsed (every line or row failed as text).

    The core reports each unparsable NDJSON line or CSV row as a reject with rule "json" (so one bad line
    does not sink a batch); a body of which nothing parses is refused whole, naming its first bad line.
    """
    if result.accepted or not result.rejects:
        return None
    if not all(v.rule == "json" for r in result.rejects for v in r.violations):
        return None
    first = result.rejects[0]
    column = _AT_COLUMN.search(first.reason)
    return ErrorBody(code="parse_error", message=f"line {first.line}: {first.reason}", line=first.line,
                     column=int(column.group(1)) if column else None)


def _refused(reject: eventpipe_core.Reject) -> tuple[dict[str, Any], RefusedLine]:
    """A reject as the 202 body lists it (RejectOut's fields), and as its reject record carries it."""
    reasons = [{"field": v.field, "rule": v.rule, "message": v.message} for v in reject.violations]
    return ({"line": reject.line, "reason": reject.reason, "violations": reasons},
            RefusedLine(line=reject.line, raw=reject.raw, reasons=reasons))
