"""Publishing records to Kinesis with PutRecords: batching within the limits, retries with backoff + jitter.

The caller bounds the whole publish with a deadline (asyncio.timeout); a request is answered 202 only when
`publish` returned, i.e. Kinesis acknowledged every record. The records come packed from the Rust core
(`eventpipe_core.ingest_batch`), by the shard map `shard_map()` hands out; a record acknowledged on another shard
than the one it was packed for means the map is stale, and it is loaded again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence

from eventpipe_common.errors import EventpipeError
from eventpipe_common.logging import get_logger

from eventpipe_ingest.metrics import IngestMetrics
from eventpipe_ingest.records import OutgoingRecord, ShardMap, plan_batches, record_size
from eventpipe_ingest.shards import ShardMapCache
from eventpipe_ingest.transport import PutRecordsTransport, Record, RecordResult, StreamError, TransportError

THROTTLE_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException",
                            "LimitExceededException", "KMSThrottlingException"})
RETRYABLE_CALL_CODES = THROTTLE_CODES | frozenset({"InternalFailure", "ServiceUnavailable", "InternalServerError",
                                                   "RequestTimeout", "RequestTimeoutException"})


log = get_logger()


class PublishError(EventpipeError):
    """The stream refused the records for a reason retrying cannot fix (e.g. the stream does not exist)."""

    code = "publish_failed"


def backoff_delay(attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2^attempt)]."""
    return rand() * min(cap, base * 2.0 ** attempt)


class KinesisPublisher:
    def __init__(self, put_records: PutRecordsTransport, metrics: IngestMetrics, *, concurrency: int = 8,
                 retry_base: float = 0.05, retry_max: float = 2.0, shards: ShardMapCache | None = None,
                 pack_max_bytes: int = 0) -> None:
        self._put_records = put_records
        self._shards = shards
        self._pack_max_bytes = pack_max_bytes
        self._metrics = metrics
        self._concurrency = concurrency
        self._retry_base = retry_base
        self._retry_max = retry_max

    async def shard_map(self) -> ShardMap | None:
        """The map to pack a request's events by; None when packing is off or the map cannot be loaded."""
        if self._shards is None or self._pack_max_bytes <= 0:
            return None
        return await self._shards.get()

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Return once every record is acknowledged; retry failures until cancelled (the caller's deadline)."""
        entries: list[Record] = [(r.data, r.key) for r in records]
        expected = [r.shard_id for r in records]
        batches = plan_batches([record_size(r.data, r.key) for r in records])
        if len(batches) == 1:
            await self._put_until_acknowledged(entries, expected)
            return
        gate = asyncio.Semaphore(self._concurrency)

        async def one(batch: range) -> None:
            async with gate:
                await self._put_until_acknowledged(entries[batch.start:batch.stop], expected[batch.start:batch.stop])

        try:
            async with asyncio.TaskGroup() as group:
                for batch in batches:
                    group.create_task(one(batch))
        except ExceptionGroup as failures:
            # Surface the first stream error as itself, so callers handle one exception type.
            first = failures.exceptions[0]
            raise (first if isinstance(first, Exception) else failures) from None

    async def _put_until_acknowledged(self, entries: list[Record], expected: list[str | None]) -> None:
        pending = entries
        pending_expected = expected
        attempt = 0
        while True:
            try:
                results = await self._put_records(pending)
            except StreamError as exc:
                if exc.code not in RETRYABLE_CALL_CODES:
                    raise PublishError(f"PutRecords failed: {exc.code}: {exc.message}", aws_code=exc.code) from exc
                if exc.code in THROTTLE_CODES:
                    self._metrics.kinesis_throttles.inc()
                failed = pending
            except (TransportError, OSError):
                # Connection reset, endpoint down, read timeout: the records may or may not have landed; sending
                # them again is safe because consumers deduplicate on event_id.
                failed = pending
            else:
                self._check_shards(results, pending_expected)
                failed_at = [i for i, result in enumerate(results) if result.error_code is not None]
                if not failed_at and len(results) == len(pending):
                    return
                # A short answer acknowledges nothing: everything is sent again.
                failed = [pending[i] for i in failed_at] if failed_at else pending
                pending_expected = [pending_expected[i] for i in failed_at] if failed_at else pending_expected
                throttled = sum(1 for result in results if result.error_code in THROTTLE_CODES)
                if throttled:
                    self._metrics.kinesis_throttles.inc(throttled)
            self._metrics.kinesis_retries.inc(len(failed))
            await asyncio.sleep(backoff_delay(attempt, self._retry_base, self._retry_max))
            attempt += 1
            pending = failed

    def _check_shards(self, results: list[RecordResult], expected: list[str | None]) -> None:
        """A packed record acknowledged on another shard than the map named: the map is stale (resharding)."""
        if self._shards is None:
            return
        for result, shard_id in zip(results, expected, strict=False):  # a short answer is retried above
            landed = result.shard_id
            if shard_id is not None and landed is not None and landed != shard_id:
                log.warning("shard map is stale: reloading it", expected_shard=shard_id, actual_shard=landed)
                self._shards.invalidate()
                return
