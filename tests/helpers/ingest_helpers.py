"""Helpers of the ingest tests: fresh streams on kinesalite and reading them back line by line, Kinesis' routing
rule written out independently, and an ASGI app served by uvicorn on 127.0.0.1 in a thread."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import uvicorn

from tests.helpers.servers import free_port


def kinesis_client(endpoint: str) -> Any:
    return boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1")


def create_stream(endpoint: str, shards: int = 2) -> str:
    """A fresh stream per use: created by the test, as the operator or local stack would in production."""
    name = f"ingest-test-{uuid.uuid4().hex[:12]}"
    client = kinesis_client(endpoint)
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    return name


def read_stream(endpoint: str, stream: str) -> list[dict[str, Any]]:
    """Every line of every record in every shard, from the start (GetRecords until the shard is caught up).

    Ingest packs the events of one shard into records of several NDJSON lines: each line is returned as an entry
    of its own, with its record's PartitionKey, ShardId, SequenceNumber and RecordBytes (data + key).
    """
    client = kinesis_client(endpoint)
    out: list[dict[str, Any]] = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            answer = client.get_records(ShardIterator=iterator, Limit=10_000)
            for record in answer["Records"]:
                size = len(record["Data"]) + len(record["PartitionKey"].encode())
                out.extend({**record, "Data": line, "ShardId": shard["ShardId"], "RecordBytes": size}
                           for line in record["Data"].split(b"\n"))
            if not answer["Records"] and answer.get("MillisBehindLatest", 0) == 0:
                break
            iterator = answer.get("NextShardIterator")
    return out


def kinesis_hash_key(key: str) -> int:
    """Kinesis' routing rule, written out independently of the code under test: MD5 of the partition key's UTF-8
    bytes as a 128-bit big-endian integer; the open shard whose hash key range holds it takes the record."""
    return int.from_bytes(hashlib.md5(key.encode()).digest(), "big")


def shard_of_key(endpoint: str, stream: str, key: str) -> str:
    """The open shard of `stream` that Kinesis routes a partition key to (kinesis_hash_key)."""
    hash_key = kinesis_hash_key(key)
    for shard in kinesis_client(endpoint).list_shards(StreamName=stream)["Shards"]:
        if "EndingSequenceNumber" in shard["SequenceNumberRange"]:
            continue  # closed by a reshard: takes no more records
        low, high = shard["HashKeyRange"]["StartingHashKey"], shard["HashKeyRange"]["EndingHashKey"]
        if int(low) <= hash_key <= int(high):
            return str(shard["ShardId"])
    raise AssertionError(f"no shard holds the hash of {key!r}")


@contextmanager
def serve(app: Any, **config: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a thread (real HTTP, real lifespan); yields the base URL.
    `config`: more uvicorn.Config options (e.g. ssl_certfile and ssl_keyfile: the URL is then https)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan=config.pop("lifespan", "on"), **config))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"{'https' if 'ssl_certfile' in config else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
