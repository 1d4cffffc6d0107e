"""The PutRecords call, two ways: aiobotocore's generic client, or a lean call built by hand (the default).

botocore validates, serializes and parses every one of the 500 entries of a call through its generic
model-driven code, which costs more CPU than the rest of a request (docs/benchmarks.md, W2). The lean call sends
the same Kinesis JSON-protocol request (X-Amz-Target Kinesis_20131202.PutRecords, base64 Data; the body and its
SHA-256 built by the Rust core), signed with SigV4
(eventpipe_ingest.sigv4) using the aiobotocore client's credentials, endpoint and region, over the small
keep-alive HTTP client of eventpipe_ingest.httpclient, and answers in botocore's shapes (a dict, or ClientError /
HTTPClientError), so the publisher cannot tell them apart.
"""

from __future__ import annotations

from typing import Any

import eventpipe_core
import orjson
from botocore.exceptions import ClientError, HTTPClientError

from eventpipe_ingest.httpclient import HttpClient, HttpError
from eventpipe_ingest.sigv4 import PostSigner

TARGET = "Kinesis_20131202.PutRecords"
CONTENT_TYPE = "application/x-amz-json-1.1"


def put_records_body(stream_name: str, entries: list[dict[str, Any]]) -> tuple[bytes, str]:
    """The JSON request body of PutRecords (Data in base64, as the JSON protocol requires) and its SHA-256 hex."""
    return eventpipe_core.put_records_body(stream_name, [(e["Data"], e["PartitionKey"]) for e in entries])


def error_code(payload: bytes) -> tuple[str, str]:
    """(code, message) of a JSON-protocol error body, e.g. {"__type": "...#ResourceNotFoundException"}."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return "InternalFailure", payload[:200].decode("utf-8", "replace")
    code = str(body.get("__type", "InternalFailure")).rsplit("#", 1)[-1]
    return code, str(body.get("message") or body.get("Message") or "")


class LeanPutRecords:
    """`await put(entries)` -> the PutRecords answer; signed per call, sent by `http` (to `endpoint_url`)."""

    def __init__(self, credentials: Any, endpoint_url: str, region: str, stream_name: str,
                 http: HttpClient) -> None:
        self._credentials = credentials  # aiobotocore's resolved credentials (they refresh themselves)
        self._signer = PostSigner(endpoint_url, region, "kinesis",
                                  {"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET})
        self._stream_name = stream_name
        self._http = http

    async def __call__(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        body, body_sha256 = put_records_body(self._stream_name, entries)
        frozen = await self._credentials.get_frozen_credentials()
        headers = self._signer.headers(frozen, body_sha256)
        try:
            status, payload = await self._http.post(headers, body)
        except HttpError as exc:
            raise HTTPClientError(error=exc) from exc
        if status == 200:
            result: dict[str, Any] = orjson.loads(payload)
            return result
        code, message = error_code(payload)
        raise ClientError({"Error": {"Code": code, "Message": message},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, "PutRecords")
