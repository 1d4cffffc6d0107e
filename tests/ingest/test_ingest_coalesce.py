"""PutRecords calls made while one is in flight go out merged (eventpipe_ingest.coalesce), answers split back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiobotocore.session import get_session
from eventpipe_ingest.coalesce import CoalescedTransport
from eventpipe_ingest.kinesis import AiobotocoreTransport
from eventpipe_ingest.transport import PutRecordsTransport, Record, RecordResult, ShortAnswerError, StreamError

from tests.helpers.ingest_helpers import create_stream, read_stream


def entries(tag: str, n: int, size: int = 10) -> list[Record]:
    return [(f"{tag}-{i}-".encode().ljust(size, b"x"), f"{tag}-{i}") for i in range(n)]


def test_calls_made_while_one_is_in_flight_go_out_as_one(kinesis_endpoint: str) -> None:
    """Against kinesalite: the first of six concurrent calls goes out alone, the five made meanwhile go out as one
    call; each caller's answer holds the sequence numbers of its own records, and every record is in the stream
    once."""
    stream = create_stream(kinesis_endpoint, shards=2)
    calls: list[int] = []
    batches = [entries(f"c{n}", n + 1) for n in range(6)]

    async def scenario() -> list[list[RecordResult]]:
        async with get_session().create_client(
                "kinesis", endpoint_url=kinesis_endpoint, region_name="us-east-1", aws_access_key_id="test",
                aws_secret_access_key="test") as client:
            transport = AiobotocoreTransport(client, stream)

            async def put(records: list[Record], /) -> list[RecordResult]:
                calls.append(len(records))
                return await transport(records)

            coalesced = CoalescedTransport(put, max_in_flight=1)
            answers = await asyncio.gather(*(coalesced(batch) for batch in batches))
            await coalesced.aclose()
            return answers

    answers = asyncio.run(scenario())
    assert calls == [1, 20]
    by_sequence = {(r["ShardId"], r["SequenceNumber"]): r["Data"] for r in read_stream(kinesis_endpoint, stream)}
    assert len(by_sequence) == 21
    for batch, answer in zip(batches, answers, strict=True):
        assert not any(r.failed for r in answer)
        assert [by_sequence[(r.shard_id, r.sequence_number)] for r in answer] == [data for data, _ in batch]


def run_concurrently(put: PutRecordsTransport, batches: list[list[Record]], **options: Any) -> list[Any]:
    async def scenario() -> list[Any]:
        coalesced = CoalescedTransport(put, **options)
        return await asyncio.gather(*(coalesced(batch) for batch in batches), return_exceptions=True)

    return asyncio.run(scenario())


# The stream doubles below stand in for Kinesis where kinesalite cannot help: it never answers with partial
# failures or short answers, and the merging rules (limits, who gets which slice) are logic of this module alone.
def answering(calls: list[list[Record]], fail: Any = lambda entry: False) -> PutRecordsTransport:
    async def put(records: list[Record], /) -> list[RecordResult]:
        calls.append(records)
        await asyncio.sleep(0.01)
        return [RecordResult(error_code="ProvisionedThroughputExceededException", error_message="slow down")
                if fail(e) else RecordResult("shardId-0", e[1]) for e in records]

    return put


def test_each_caller_gets_its_own_failures() -> None:
    calls: list[list[Record]] = []
    batches = [entries("a", 1), entries("b", 3), entries("c", 2)]
    answers = run_concurrently(answering(calls, fail=lambda e: e[1].endswith("-1")), batches)
    assert [len(c) for c in calls] == [1, 5]
    assert [sum(r.failed for r in a) for a in answers] == [0, 1, 1]
    for batch, answer in zip(batches, answers, strict=True):
        for (_, key), result in zip(batch, answer, strict=True):
            assert result.failed == key.endswith("-1")
            assert result.failed or result.sequence_number == key


def test_merged_calls_stay_within_the_service_limits() -> None:
    calls: list[list[Record]] = []
    batches = [entries("first", 1), entries("a", 300), entries("b", 300), entries("c", 150), entries("d", 10, 600)]
    answers = run_concurrently(answering(calls), batches, max_bytes=10_000)
    # a + b would be 600 records (limit 500); b + c fit (~6.5 KB); d's ~6 KB more would pass 10 KB.
    assert [len(c) for c in calls] == [1, 300, 450, 10]
    assert [len(a) for a in answers] == [len(b) for b in batches]


def test_a_failed_call_fails_every_caller_in_it_and_a_short_answer_counts_as_failed() -> None:
    async def refuse(records: list[Record], /) -> list[RecordResult]:
        await asyncio.sleep(0.01)
        raise StreamError("ResourceNotFoundException", "no stream", 400)

    answers = run_concurrently(refuse, [entries("a", 1), entries("b", 2), entries("c", 2)])
    assert all(isinstance(a, StreamError) for a in answers)

    async def short(records: list[Record], /) -> list[RecordResult]:
        return [RecordResult("s", "1")]

    [answer] = run_concurrently(short, [entries("a", 2)])
    assert isinstance(answer, ShortAnswerError)


def test_a_caller_that_gave_up_before_its_turn_sends_nothing() -> None:
    calls: list[list[Record]] = []

    async def scenario() -> None:
        coalesced = CoalescedTransport(answering(calls))
        first = asyncio.create_task(coalesced(entries("first", 1)))
        gives_up = asyncio.create_task(coalesced(entries("gone", 2)))
        waits = asyncio.create_task(coalesced(entries("stays", 3)))
        await asyncio.sleep(0)  # all three have called: the first is out, the other two wait
        gives_up.cancel()
        await asyncio.gather(first, waits)
        with pytest.raises(asyncio.CancelledError):
            await gives_up

    asyncio.run(scenario())
    assert [[key for _, key in c] for c in calls] == [["first-0"], ["stays-0", "stays-1", "stays-2"]]
