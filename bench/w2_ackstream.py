"""A stream endpoint that only acknowledges (benchmark W2): answers Kinesis PutRecords with success for every
record (on the shard its partition key routes to, as Kinesis does), ListShards with SHARDS open shards splitting
the hash key space evenly, and DescribeStreamSummary with an ACTIVE stream, storing nothing.

The emulators are slower than the real service, so W2 measures ingest against this instead of kinesalite.

    python -m bench.w2_ackstream PORT [SHARDS]
"""

from __future__ import annotations

import bisect
import hashlib
import json
import sys
from typing import Any

import uvicorn

SHARDS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
_STARTS = [n * (2**128 // SHARDS) for n in range(SHARDS)]
_SHARD_IDS = [f"shardId-{n:012d}" for n in range(SHARDS)]
_RECORDS = [b'{"SequenceNumber":"4960000000000000000000000000000000000000000000000000","ShardId":"%s"}'
            % shard_id.encode() for shard_id in _SHARD_IDS]
_SHARDS = json.dumps({"Shards": [
    {"ShardId": shard_id, "HashKeyRange": {"StartingHashKey": str(start), "EndingHashKey": str(end)},
     "SequenceNumberRange": {"StartingSequenceNumber": "4960000000000000000000000000000000000000000000000000"}}
    for shard_id, start, end in zip(_SHARD_IDS, _STARTS, [*_STARTS[1:], 2**128], strict=True)]}).encode()
_SUMMARY = json.dumps({"StreamDescriptionSummary": {
    "StreamName": "bench", "StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/bench",
    "StreamStatus": "ACTIVE", "RetentionPeriodHours": 24, "StreamCreationTimestamp": 0,
    "EnhancedMonitoring": [], "OpenShardCount": SHARDS}}).encode()


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
        keys = [record["PartitionKey"] for record in json.loads(body)["Records"]]
        answer = (b'{"FailedRecordCount":0,"Records":['
                  + b",".join(_RECORDS[_shard_of(key) - 1] for key in keys) + b"]}")
    elif target.endswith(b"ListShards"):
        answer = _SHARDS
    elif target.endswith(b"DescribeStreamSummary"):
        answer = _SUMMARY
    else:
        answer = b"{}"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/x-amz-json-1.1")]})
    await send({"type": "http.response.body", "body": answer})


def _shard_of(key: str) -> int:
    """1 + index of the shard Kinesis routes `key` to (MD5 of the key as a 128-bit big-endian integer)."""
    return bisect.bisect_right(_STARTS, int.from_bytes(hashlib.md5(key.encode()).digest(), "big"))


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
