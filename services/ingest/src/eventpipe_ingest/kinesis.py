"""The PutRecords transports (eventpipe_ingest.transport): a lean call built by hand (the default), or
aiobotocore's generic client.

botocore validates, serializes and parses every one of the 500 entries of a call through its generic
model-driven code, which costs more CPU than the rest of a request (docs/benchmarks.md, W2). The lean call sends
the same Kinesis JSON-protocol request (X-Amz-Target Kinesis_20131202.PutRecords, base64 Data; the body and its
SHA-256 built by the Rust core), signed with SigV4 (eventpipe_ingest.sigv4) using the aiobotocore session's
credentials, endpoint and region, over the small keep-alive HTTP client of eventpipe_ingest.httpclient. Both
answer in the transport's terms (RecordResult, StreamError, TransportError), so the publisher cannot tell them
apart; the same contract tests run against both.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import eventpipe_core
import orjson
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError
from eventpipe_common.errors import ConfigurationError

from eventpipe_ingest.httpclient import HttpClient, HttpError
from eventpipe_ingest.settings import IngestSettings, KinesisClient
from eventpipe_ingest.sigv4 import PostSigner
from eventpipe_ingest.transport import PutRecordsTransport, Record, RecordResult, StreamError, TransportError

TARGET = "Kinesis_20131202.PutRecords"
CONTENT_TYPE = "application/x-amz-json-1.1"


def put_records_body(stream_name: str, records: list[Record]) -> tuple[bytes, str]:
    """The JSON request body of PutRecords (Data in base64, as the JSON protocol requires) and its SHA-256 hex."""
    return eventpipe_core.put_records_body(stream_name, records)


def error_code(payload: bytes) -> tuple[str, str]:
    """(code, message) of a JSON-protocol error body, e.g. {"__type": "...#ResourceNotFoundException"}."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return "InternalFailure", payload[:200].decode("utf-8", "replace")
    if not isinstance(body, dict):
        return "InternalFailure", payload[:200].decode("utf-8", "replace")
    code = str(body.get("__type", "InternalFailure")).rsplit("#", 1)[-1]
    return code, str(body.get("message") or body.get("Message") or "")


def record_results(answer: Any) -> list[RecordResult]:
    """The per-record results of a PutRecords answer (its `Records`, as the JSON protocol and botocore name
    them); an answer without them is no answer."""
    try:
        return [RecordResult(r.get("ShardId"), r.get("SequenceNumber"), r.get("ErrorCode"), r.get("ErrorMessage"))
                for r in answer["Records"]]
    except (KeyError, TypeError, AttributeError) as exc:
        raise TransportError(f"PutRecords answered without per-record results: {exc!r}") from exc


class LeanTransport:
    """`await transport(records)`; signed per call, sent by `http` (to `endpoint_url`)."""

    def __init__(self, credentials: Any, endpoint_url: str, region: str, stream_name: str,
                 http: HttpClient) -> None:
        self._credentials = credentials  # aiobotocore's resolved credentials (they refresh themselves)
        self._signer = PostSigner(endpoint_url, region, "kinesis",
                                  {"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET})
        self._stream_name = stream_name
        self._http = http

    async def __call__(self, records: list[Record], /) -> list[RecordResult]:
        body, body_sha256 = put_records_body(self._stream_name, records)
        frozen = await self._credentials.get_frozen_credentials()
        headers = self._signer.headers(frozen, body_sha256)
        try:
            status, payload = await self._http.post(headers, body)
        except HttpError as exc:
            raise TransportError(str(exc)) from exc
        if status != 200:
            code, message = error_code(payload)
            raise StreamError(code, message, status)
        try:
            answer = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise TransportError(f"PutRecords answered 200 with a body that is not JSON: {exc}") from exc
        return record_results(answer)


class AiobotocoreTransport:
    """The same call through an aiobotocore Kinesis client (EVENTPIPE_INGEST_KINESIS_CLIENT=aiobotocore)."""

    def __init__(self, client: Any, stream_name: str) -> None:
        self._client = client
        self._stream_name = stream_name

    async def __call__(self, records: list[Record], /) -> list[RecordResult]:
        entries = [{"Data": data, "PartitionKey": key} for data, key in records]
        try:
            answer = await self._client.put_records(StreamName=self._stream_name, Records=entries)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise StreamError(str(error.get("Code", "")), str(error.get("Message", "")),
                              exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")) from exc
        except BotoCoreError as exc:
            raise TransportError(str(exc)) from exc
        return record_results(answer)


def client_config(settings: IngestSettings) -> AioConfig:
    """The aiobotocore client's configuration: one attempt per call (the publisher retries), the deadline as
    timeout, no parameter validation (entries are built within the limits here; botocore's check is slow)."""
    return AioConfig(
        connect_timeout=min(5.0, settings.ingest_publish_deadline_seconds),
        read_timeout=settings.ingest_publish_deadline_seconds,
        retries={"total_max_attempts": 1},
        parameter_validation=False,
        max_pool_connections=max(10, settings.ingest_max_concurrent_requests),
    )


async def open_transport(settings: IngestSettings, session: Any, client: Any,
                         stack: AsyncExitStack) -> PutRecordsTransport:
    """The configured transport for `client`'s endpoint and region; its resources close with `stack`."""
    if settings.ingest_kinesis_client is KinesisClient.AIOBOTOCORE:
        return AiobotocoreTransport(client, settings.stream_name)
    credentials = await session.get_credentials()
    if credentials is None:
        raise ConfigurationError("no AWS credentials found for Kinesis (environment, profile or role)",
                                 setting="AWS_ACCESS_KEY_ID")
    endpoint = client.meta.endpoint_url
    http = await stack.enter_async_context(HttpClient(
        endpoint, max_connections=max(10, settings.ingest_max_concurrent_requests),
        connect_timeout=min(5.0, settings.ingest_publish_deadline_seconds),
        timeout=settings.ingest_publish_deadline_seconds))
    return LeanTransport(credentials, endpoint, client.meta.region_name, settings.stream_name, http)
