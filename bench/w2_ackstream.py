"""A stream endpoint that only acknowledges (benchmark W2): answers Kinesis PutRecords with success for every
record and DescribeStreamSummary with an ACTIVE stream, storing nothing.

The emulators are slower than the real service, so W2 measures ingest against this instead of kinesalite.

    python -m bench.w2_ackstream PORT
"""

from __future__ import annotations

import json
import sys
from typing import Any

import uvicorn

_RECORD = b'{"SequenceNumber":"4960000000000000000000000000000000000000000000000000","ShardId":"shardId-000000000000"}'
_SUMMARY = json.dumps({"StreamDescriptionSummary": {
    "StreamName": "bench", "StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/bench",
    "StreamStatus": "ACTIVE", "RetentionPeriodHours": 24, "StreamCreationTimestamp": 0,
    "EnhancedMonitoring": [], "OpenShardCount": 1}}).encode()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    target = dict(scope["headers"]).get(b"x-amz-target", b"")
    if target.endswith(b"PutRecords"):
        # Counting the entries is enough to answer; no JSON parse, so this endpoint costs little CPU.
        n = body.count(b'"PartitionKey"')
        answer = b'{"FailedRecordCount":0,"Records":[' + b",".join([_RECORD] * n) + b"]}"
    elif target.endswith(b"DescribeStreamSummary"):
        answer = _SUMMARY
    else:
        answer = b"{}"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/x-amz-json-1.1")]})
    await send({"type": "http.response.body", "body": answer})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
