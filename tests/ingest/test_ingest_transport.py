"""The PutRecords transport contract (eventpipe_ingest.transport), run against both implementations (the lean
signed call and aiobotocore's client) on a real stream (kinesalite): the same records in give the same kind of
answers out, so the publisher cannot tell them apart."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
from aiobotocore.session import get_session
from eventpipe_ingest.kinesis import AiobotocoreTransport, LeanTransport, client_config, open_transport
from eventpipe_ingest.settings import IngestSettings
from eventpipe_ingest.transport import PutRecordsTransport, Record, RecordResult, StreamError, TransportError

from tests.helpers.ingest_helpers import create_stream, read_stream, shard_of_key
from tests.helpers.servers import free_port

TRANSPORTS = ["lean", "aiobotocore"]


def with_transport(endpoint: str, stream: str, kind: str,
                   use: Callable[[PutRecordsTransport], Awaitable[Any]]) -> Any:
    """Run `use(transport)` with the transport the service would build for these settings (open_transport)."""
    settings = IngestSettings(kinesis_endpoint_url=endpoint, stream_name=stream, ingest_kinesis_client=kind,
                              ingest_publish_deadline_seconds=5.0)

    async def scenario() -> Any:
        async with AsyncExitStack() as stack:
            session = get_session()
            client = await stack.enter_async_context(session.create_client(
                "kinesis", region_name=settings.aws_region, endpoint_url=endpoint, config=client_config(settings)))
            transport = await open_transport(settings, session, client, stack)
            assert isinstance(transport, LeanTransport if kind == "lean" else AiobotocoreTransport)
            return await use(transport)

    return asyncio.run(scenario())


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_one_result_per_record_in_order_each_where_it_landed(kinesis_endpoint: str, kind: str) -> None:
    stream = create_stream(kinesis_endpoint, shards=3)
    # Any bytes but a line break (read_stream splits records into NDJSON lines, as consumers do).
    records: list[Record] = [(os.urandom(i % 50 + 1).replace(b"\n", b"") + b"\x00\xff", key)
                             for i, key in enumerate(["u-1", "ü-2", "用户-3", "u-1", "k" * 256, "x"] * 5)]

    async def put(transport: PutRecordsTransport) -> list[RecordResult]:
        return await transport(records)

    results = with_transport(kinesis_endpoint, stream, kind, put)
    assert len(results) == len(records)
    assert all(isinstance(r, RecordResult) and not r.failed and r.error_message is None for r in results)
    landed = {(r["ShardId"], r["SequenceNumber"]): r["Data"] for r in read_stream(kinesis_endpoint, stream)}
    assert len(landed) == len(records)
    for (data, key), result in zip(records, results, strict=True):
        assert result.shard_id == shard_of_key(kinesis_endpoint, stream, key)
        assert landed[(result.shard_id, result.sequence_number)] == data


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_a_call_the_stream_refuses_is_a_stream_error_with_its_code(kinesis_endpoint: str, kind: str) -> None:
    async def put(transport: PutRecordsTransport) -> None:
        await transport([(b"x", "k")])

    with pytest.raises(StreamError) as info:
        with_transport(kinesis_endpoint, "no-such-stream", kind, put)
    assert info.value.code == "ResourceNotFoundException"
    assert info.value.status == 400
    assert "no-such-stream" in info.value.message


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_no_answer_is_a_transport_error(kind: str) -> None:
    """Nothing listens on the endpoint (a free port): the records may or may not have landed, for both."""
    async def put(transport: PutRecordsTransport) -> None:
        await transport([(b"x", "k")])

    with pytest.raises(TransportError):
        with_transport(f"http://127.0.0.1:{free_port()}", "any", kind, put)
