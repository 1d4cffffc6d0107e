"""Reading Kinesis with aiobotocore: shard listing, iterators, and GetRecords within the per-shard limits.

Kinesis allows 5 GetRecords calls/s and 2 MB/s per shard; `ShardReader` spaces its calls so that it stays under
both, backs off on ProvisionedThroughputExceeded and on empty reads, and re-opens an expired iterator right
after the last record it returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from eventpipe_consumer.records import StreamRecord

READ_BYTES_PER_SECOND = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ShardInfo:
    shard_id: str
    parent_ids: tuple[str, ...]
    closed: bool  # has an ending sequence number: it was split or merged


async def list_shards(client: Any, stream: str) -> list[ShardInfo]:
    shards: list[ShardInfo] = []
    kwargs: dict[str, Any] = {"StreamName": stream}
    while True:
        answer = await client.list_shards(**kwargs)
        for shard in answer["Shards"]:
            parents = tuple(p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p)
            closed = "EndingSequenceNumber" in shard.get("SequenceNumberRange", {})
            shards.append(ShardInfo(shard["ShardId"], parents, closed))
        token = answer.get("NextToken")
        if not token:
            return shards
        kwargs = {"NextToken": token}


@dataclass(slots=True)
class ReadResult:
    records: list[StreamRecord]
    millis_behind_latest: int | None
    shard_ended: bool  # no NextShardIterator: the shard is closed and everything was returned


def lag_seconds(millis_behind_latest: int | None, records: list[StreamRecord], now_us: int,
                oldest_pending_us: int | None = None) -> float | None:
    """How far a shard's committed data is behind the tip of the shard, in seconds: the largest of Kinesis's
    MillisBehindLatest, the age of the newest record this GetRecords returned (CloudWatch's
    GetRecords.IteratorAgeMilliseconds) and the age of the oldest record read but not yet taken to a commit.
    Kinesis-compatible servers such as kinesalite answer MillisBehindLatest 0 on every open shard, however far
    behind the reader is; and a reader that keeps up with the stream while commits fall behind shows no read lag
    at all: what users wait for is the commit, so the pending records count. None when nothing is known."""
    ages = [] if millis_behind_latest is None else [millis_behind_latest / 1000.0]
    if records:
        ages.append(max(now_us - records[-1].arrival_us, 0) / 1_000_000)
    if oldest_pending_us is not None:
        ages.append(max(now_us - oldest_pending_us, 0) / 1_000_000)
    return max(ages) if ages else None


def _arrival_us(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1_000_000)
    return int(float(value) * 1_000_000)


class ShardReader:
    """Reads one shard from just after `after_sequence` (or its start), politely."""

    def __init__(self, client: Any, stream: str, shard_id: str, after_sequence: int | None, *,
                 limit: int, min_interval: float, idle_backoff_max: float,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.client = client
        self.stream = stream
        self.shard_id = shard_id
        self.after_sequence = after_sequence
        self.limit = limit
        self.min_interval = min_interval
        self.idle_backoff_max = idle_backoff_max
        self._sleep = sleep
        self._iterator: str | None = None
        self._pause = 0.0
        self._idle = min_interval

    async def _open_iterator(self) -> str:
        kwargs: dict[str, Any] = {"StreamName": self.stream, "ShardId": self.shard_id}
        if self.after_sequence is None:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            kwargs["StartingSequenceNumber"] = str(self.after_sequence)
        answer = await self.client.get_shard_iterator(**kwargs)
        return str(answer["ShardIterator"])

    async def read(self) -> ReadResult:
        """One GetRecords call (after the pause the previous one earned)."""
        if self._pause:
            await self._sleep(self._pause)
        if self._iterator is None:
            self._iterator = await self._open_iterator()
        try:
            answer = await self.client.get_records(ShardIterator=self._iterator, Limit=self.limit)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ExpiredIteratorException":
                self._iterator = None
                self._pause = 0.0
                return ReadResult([], None, False)
            if code in ("ProvisionedThroughputExceededException", "LimitExceededException"):
                self._pause = min(max(self._pause * 2, 1.0), 10.0)
                return ReadResult([], None, False)
            raise
        records = [StreamRecord(self.shard_id, r["SequenceNumber"], r["Data"],
                                _arrival_us(r["ApproximateArrivalTimestamp"])) for r in answer["Records"]]
        next_iterator = answer.get("NextShardIterator")
        self._iterator = next_iterator
        if records:
            self.after_sequence = int(records[-1].sequence_number)
            size = sum(len(r.data) for r in records)
            self._pause = max(self.min_interval, size / READ_BYTES_PER_SECOND)
            self._idle = self.min_interval
        elif answer.get("MillisBehindLatest"):
            self._pause = self.min_interval  # empty but behind: Kinesis skipped a gap, read on
        else:
            self._pause = self._idle
            self._idle = min(self._idle * 2, self.idle_backoff_max)
        return ReadResult(records, answer.get("MillisBehindLatest"), next_iterator is None)
