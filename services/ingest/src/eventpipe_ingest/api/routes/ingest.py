"""POST /ingest: a body of events to its 202 (validated by the Rust core, published to Kinesis, job recorded)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import re
import time
from typing import Any

import eventpipe_core
import orjson
from eventpipe_common.logging import get_logger, info_enabled
from eventpipe_jobs.schema import JobState, NewJob
from eventpipe_jobs.writer import JobWriter
from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect

from eventpipe_ingest.api import API_PREFIX
from eventpipe_ingest.api.deps import Services, authenticate
from eventpipe_ingest.api.errors import BODY_DONE, BODY_STARTED, BODY_STATE, ApiError, from_error
from eventpipe_ingest.body import BadBodyError, BodyTooLargeError, UnsupportedMediaTypeError, decode_content, format_for
from eventpipe_ingest.models import IngestAccepted, Problem
from eventpipe_ingest.publisher import PublishError
from eventpipe_ingest.records import MAX_BYTES_PER_RECORD, OutgoingRecord
from eventpipe_ingest.rejects import RefusedLine, reject_record
from eventpipe_ingest.settings import RejectMode

log = get_logger(component="ingest")
router = APIRouter(prefix=API_PREFIX)

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


# The route checks the key itself (api.deps.authenticate, which says why); the security schemes are declared here
# for the spec.
@router.post(
    "/ingest", status_code=202, response_model=IngestAccepted, tags=["ingest"], operation_id="ingestEvents",
    openapi_extra={**INGEST_REQUEST_BODY, "security": [{"HTTPBearer": []}, {"APIKeyHeader": []}]},
    responses={
        202: {"description": "Every valid event is acknowledged by the stream; the job is recorded.",
              "headers": {"Location": {"required": True, "description": "The job's status URL (a path).",
                                       "schema": {"type": "string"}}}},
        401: {"model": Problem, "description": "Missing or invalid API key."},
        400: {"model": Problem, "description": "The body cannot be parsed (line and column given) or is empty."},
        413: {"model": Problem, "description": "Body or event count over the limit."},
        415: {"model": Problem, "description": "Unsupported Content-Type or Content-Encoding."},
        422: {"model": Problem, "description": "Reject mode `whole`: some events invalid, none taken."},
        429: {"model": Problem, "description": "Too many requests in flight; retry after Retry-After."},
        503: {"model": Problem, "description": "The stream did not acknowledge in time; the job failed."},
    },
)
async def ingest(request: Request) -> Response:
    """Validate the events and publish the valid ones; 202 only once Kinesis acknowledged every one."""
    services: Services = request.app.state.services
    client = authenticate(services, request.headers.get("x-api-key"), request.headers.get("authorization"))
    if services.in_flight >= services.settings.ingest_max_concurrent_requests:
        services.metrics.backpressure.inc()
        raise ApiError(429, "too_many_requests", "too many ingest requests in flight", services.retry_after)
    services.in_flight += 1  # the gauge reads it (metrics.in_flight.set_function)
    try:
        return await _ingest(services, request, client)
    finally:
        services.in_flight -= 1


async def _ingest(services: Services, request: Request, client: str) -> Response:
    settings = services.settings
    try:
        fmt = format_for(request.headers.get("content-type"))
        body = await read_body(request, settings.ingest_max_body_bytes)
        writer = services.require_writer()  # before anything is published
        services.metrics.body_bytes.inc(len(body))
        body = decode_content(body, request.headers.get("content-encoding"), settings.ingest_max_body_bytes)
    except UnsupportedMediaTypeError as exc:
        raise from_error(415, exc) from exc
    except BodyTooLargeError as exc:
        raise from_error(413, exc) from exc
    except BadBodyError as exc:
        raise from_error(400, exc) from exc

    # Memory is bounded by the limits: processing a body takes a multiple of its size (up to ~16x for 10,000
    # rejects, bench/ingest_memory.py), so the decoded bytes being processed at once are capped; one request
    # is always let through, so a body within the size limit is never refused for its size alone.
    size = len(body)
    if services.body_bytes_in_flight and \
            services.body_bytes_in_flight + size > settings.ingest_max_body_bytes_in_flight:
        services.metrics.backpressure.inc()
        raise ApiError(429, "too_many_requests", (
            f"{services.body_bytes_in_flight} body bytes are being processed; this body's {size} would pass "
            f"the limit of {settings.ingest_max_body_bytes_in_flight}"), services.retry_after,
            limit=settings.ingest_max_body_bytes_in_flight)
    services.body_bytes_in_flight += size
    try:
        return await _ingest_body(services, request, client, writer, fmt, body)
    finally:
        services.body_bytes_in_flight -= size


async def _ingest_body(services: Services, request: Request, client: str, writer: JobWriter, fmt: str,
                       body: bytes) -> Response:
    """A decoded body to its 202, or its refusal."""
    settings, metrics = services.settings, services.metrics
    job_id = new_job_id()
    request.state.job_id = job_id  # for the log of a failure from here on (api.errors.log_failure)
    shard_map = await services.require_publisher().shard_map()
    ingest_batch = functools.partial(
        eventpipe_core.ingest_batch, body, job_id=job_id, format=fmt, schema=services.schema,
        partition_key_field=settings.ingest_partition_key_field,
        shard_starts=shard_map.starts if shard_map else None, pack_max_bytes=settings.ingest_pack_max_bytes,
        max_record_bytes=MAX_BYTES_PER_RECORD, max_events=settings.ingest_max_events)
    try:
        result = ingest_batch() if len(body) <= INLINE_CORE_MAX_BYTES else await asyncio.to_thread(ingest_batch)
    except eventpipe_core.ParseError as exc:
        raise ApiError(400, "parse_error", str(exc), line=exc.line, column=exc.column) from exc
    except ValueError as exc:  # the core's EventpipeError is a ValueError; so is undecodable text
        raise ApiError(400, "bad_request", str(exc)) from exc

    if result.received == 0:
        raise ApiError(400, "empty_body", "the body holds no events")
    unparsable = _unparsable(result)
    if unparsable is not None:
        raise unparsable
    if result.received > settings.ingest_max_events:
        raise ApiError(413, "payload_too_large", (
            f"{result.received} events in one request; the limit is {settings.ingest_max_events}"),
            limit=settings.ingest_max_events)

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
        raise ApiError(422, "invalid_events", f"{len(rejects)} of {result.received} events are invalid; "
                       "this pipeline accepts a request only when every event is valid", received=result.received,
                       rejected=len(rejects), rejects=rejects)

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
        await _publish(services, job, outgoing, client)
    try:
        await writer.create(job)
    except Exception as exc:
        metrics.job_store_errors.labels("create").inc()
        # The events are in the stream but the job cannot be looked up: no 202 (it would 404 on status);
        # the client's retry is safe, consumers deduplicate on event_id.
        log.error("job store unavailable", job_id=job_id, error=type(exc).__name__, detail=str(exc)[:300])
        raise ApiError(503, "dependency_unavailable", "the job store is unavailable",
                       services.retry_after) from exc
    metrics.events_accepted.inc(accepted)
    if info_enabled():
        log.info("ingested", client=client, job_id=job_id, received=result.received, accepted=accepted,
                 rejected=len(rejects), duplicates=result.duplicates)
    # IngestAccepted (response_model above declares it in the OpenAPI spec), serialized from plain values:
    # building the models and FastAPI validating them again is a visible share of a request. The schemathesis
    # test checks this body against the spec.
    answer = {"job_id": job_id, "state": state.value, "received": result.received, "accepted": accepted,
              "rejected": len(rejects), "duplicates": result.duplicates, "rejects": rejects}
    return Response(orjson.dumps(answer), status_code=202, media_type="application/json",
                    headers={"Location": f"{API_PREFIX}/status/{job_id}"})


async def _publish(services: Services, job: NewJob, records: list[OutgoingRecord], client: str) -> None:
    """Publish `records` until acknowledged; on failure, write the job as failed and answer 503."""
    publisher = services.require_publisher()
    job_id = job.job_id
    deadline = services.settings.ingest_publish_deadline_seconds
    started = time.perf_counter()
    try:
        async with asyncio.timeout(deadline):
            await publisher.publish(records)
    except TimeoutError as exc:
        reason = f"Kinesis did not acknowledge all {len(records)} records within {deadline}s"
        written = await _fail(services, job, reason, "deadline", client)
        raise ApiError(503, "publish_timeout", reason, services.retry_after,
                       job_id=job_id if written else None) from exc
    except PublishError as exc:
        reason = str(exc)
        written = await _fail(services, job, reason, "stream_error", client)
        raise ApiError(503, "publish_failed", reason, services.retry_after,
                       job_id=job_id if written else None) from exc
    services.metrics.publish_latency.observe(time.perf_counter() - started)


async def _fail(services: Services, job: NewJob, reason: str, kind: str, client: str) -> bool:
    """Write the job as failed; False when the store could not (the 503 then names no job id)."""
    services.metrics.publish_failures.labels(kind).inc()
    log.warning("publish failed", client=client, job_id=job.job_id, reason=reason)
    try:
        await services.require_writer().create(dataclasses.replace(job, state=JobState.FAILED, reason=reason))
    except Exception as exc:  # noqa: BLE001 - the client gets 503 either way; the failure is logged
        services.metrics.job_store_errors.labels("create_failed").inc()
        log.error("could not record the failed job", job_id=job.job_id, error=type(exc).__name__)
        return False
    return True


async def read_body(request: Request, limit: int) -> bytes:
    """The body as sent, refusing more than `limit` bytes without reading it into memory: a declared length over
    the limit before reading anything (a client that sent `Expect: 100-continue` then sends no body), else as soon
    as the bytes read pass it. The scope records how far the body was read (api.errors.settle_body reads the rest
    of a refused one, so the client can read the answer)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(f"the body is {declared} bytes, over the limit of {limit} bytes", limit=limit)
    scope = request.scope
    receive = request.receive
    scope[BODY_STATE] = BODY_STARTED
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope[BODY_STATE] = BODY_DONE
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        if not more:
            scope[BODY_STATE] = BODY_DONE
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"the body is over the limit of {limit} bytes", limit=limit)
        chunks.append(chunk)
        if not more:
            return b"".join(chunks)


def job_id_of(random16: bytes) -> str:
    """`str(uuid.UUID(bytes=random16, version=4))`, formatted directly: uuid.uuid4() builds a 128-bit integer
    and its string from it, a visible share of a request's Python time under load (docs/benchmarks.md, W2)."""
    raw = bytearray(random16)
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_job_id() -> str:
    """A random (version 4) UUID as text, from the same source as uuid.uuid4 (os.urandom)."""
    return job_id_of(os.urandom(16))


_AT_COLUMN = re.compile(r" at column (\d+)")


def _unparsable(result: eventpipe_core.IngestBatch) -> ApiError | None:
    """A 400 when not one event of the request could be parsed (every line or row failed as text).

    The core reports each unparsable NDJSON line or CSV row as a reject with rule "json" (so one bad line
    does not sink a batch); a body of which nothing parses is refused whole, naming its first bad line.
    """
    if result.accepted or not result.rejects:
        return None
    if not all(v.rule == "json" for r in result.rejects for v in r.violations):
        return None
    first = result.rejects[0]
    column = _AT_COLUMN.search(first.reason)
    return ApiError(400, "parse_error", f"line {first.line}: {first.reason}", line=first.line,
                    column=int(column.group(1)) if column else None)


def _refused(reject: eventpipe_core.Reject) -> tuple[dict[str, Any], RefusedLine]:
    """A reject as the 202 body lists it (RejectOut's fields), and as its reject record carries it."""
    reasons = [{"field": v.field, "rule": v.rule, "message": v.message} for v in reject.violations]
    return ({"line": reject.line, "reason": reject.reason, "violations": reasons},
            RefusedLine(line=reject.line, raw=reject.raw, reasons=reasons))
