"""Kinesis records and the PutRecords limits: pure functions, no I/O.

The record contract (docs/architecture.md): a Kinesis record's Data holds one or more lines (NDJSON, joined by "\n"),
each one event as single-line JSON with the reserved top-level field "_job_id" first, or one reject record of
ingest (eventpipe_ingest.rejects). The Rust core builds the events' records from the request body in one pass
(`eventpipe_core.ingest_batch`): validation, dedupe, partition keys, and packing.

Packing: events whose partition keys hash into the same shard travel together in one record, as the Kinesis
Producer Library aggregates. Kinesis charges and limits per record (1,000 records/s per shard, a 25 KB payload
unit per record), so one 300-byte event per record wastes most of both; a packed record of a few hundred events
costs one. A packed record's partition key is its first event's key, which hashes into the same shard as every
other event in it (by the shard map), so each event still lands on the shard its own key names and a user's
re-sends keep meeting the consumer's per-shard dedupe window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

# Kinesis service limits (PutRecords): https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html
MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024  # data + partition key


class OutgoingRecord(NamedTuple):
    """One record to publish, and the shard it must land on (packed records; None when not packed)."""

    data: bytes
    key: str
    shard_id: str | None = None


def record_size(data: bytes, key: str) -> int:
    return len(data) + (len(key) if key.isascii() else len(key.encode("utf-8")))


def plan_batches(sizes: list[int], max_records: int = MAX_RECORDS_PER_CALL,
                 max_bytes: int = MAX_BYTES_PER_CALL) -> list[range]:
    """Split records (by size, in order) into contiguous PutRecords calls within the per-call limits.

    Every size must already be <= MAX_BYTES_PER_RECORD (larger events are rejected before publishing).
    """
    batches: list[range] = []
    start, total = 0, 0
    for index, size in enumerate(sizes):
        if index > start and (index - start >= max_records or total + size > max_bytes):
            batches.append(range(start, index))
            start, total = index, 0
        total += size
    if start < len(sizes):
        batches.append(range(start, len(sizes)))
    return batches


@dataclass(frozen=True)
class ShardMap:
    """The open shards of a stream by the start of their hash key range, to route partition keys like Kinesis:
    MD5 of the key's UTF-8 bytes read as a 128-bit big-endian integer, the shard whose range holds it."""

    starts: tuple[int, ...]  # ascending starting hash keys
    shard_ids: tuple[str, ...]

    @classmethod
    def from_shards(cls, shards: Sequence[Mapping[str, Any]]) -> ShardMap:
        """From ListShards' `Shards`: the open ones (no EndingSequenceNumber); closed parents take no writes."""
        open_shards = sorted(
            (int(shard["HashKeyRange"]["StartingHashKey"]), str(shard["ShardId"])) for shard in shards
            if "EndingSequenceNumber" not in shard.get("SequenceNumberRange", {}))
        if not open_shards:
            raise ValueError("the stream has no open shard")
        return cls(tuple(start for start, _ in open_shards), tuple(shard_id for _, shard_id in open_shards))
