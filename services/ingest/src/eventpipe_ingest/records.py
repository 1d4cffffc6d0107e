"""From the core's BatchResult to Kinesis records: pure functions, no I/O.

The record contract (ARCHITECTURE.md): a Kinesis record's Data holds one or more lines (NDJSON, joined by "\n"),
each one event as compact JSON with the reserved top-level field "_job_id" first (the core's `raw` column when
called with job_id and include_raw=True), or one reject record of ingest (eventpipe_ingest.rejects).

Packing (`pack_records`): events whose partition keys hash into the same shard travel together in one record, as
the Kinesis Producer Library aggregates. Kinesis charges and limits per record (1,000 records/s per shard, a 25 KB
payload unit per record), so one 300-byte event per record wastes most of both; a packed record of a few hundred
events costs one. A packed record's partition key is its first event's key, which hashes into the same shard as
every other event in it (by the shard map), so each event still lands on the shard its own key names and a
user's re-sends keep meeting the consumer's per-shard dedupe window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import eventpipe_core
import pyarrow as pa
import pyarrow.compute as pc

# Kinesis service limits (PutRecords): https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html
MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024  # data + partition key
MAX_PARTITION_KEY_CHARS = 256


@dataclass(frozen=True)
class Records:
    data: list[bytes]
    keys: list[str]
    lines: list[int]  # source line of each record, to report oversize events as rejects
    sizes: list[int]  # record size as Kinesis counts it (data + partition key bytes)

    def __len__(self) -> int:
        return len(self.data)


def _fit_key(key: str) -> str:
    """Kinesis partition keys are 1..256 Unicode characters; longer values are hashed (still stable)."""
    return key if len(key) <= MAX_PARTITION_KEY_CHARS else hashlib.sha256(key.encode("utf-8")).hexdigest()


def _key_column(table: pa.Table, field: str) -> pa.ChunkedArray:
    """The partition key of each record as a column: `field` when present and non-empty, else event_id."""
    event_id = table.column("event_id")
    if field == "event_id" or field not in table.column_names:
        return event_id
    column = pc.cast(table.column(field), pa.string())
    missing = pc.or_kleene(pc.is_null(column), pc.equal(column, ""))
    return pc.if_else(pc.fill_null(missing, True), event_id, column)


def partition_keys(table: pa.Table, field: str) -> list[str]:
    """The partition key of each record: `field` when present and non-empty, else event_id (hashed when over
    256 characters; only then is there Python work per key)."""
    column = _key_column(table, field)
    keys: list[str] = column.to_pylist()
    if table.num_rows and pc.max(pc.utf8_length(column)).as_py() > MAX_PARTITION_KEY_CHARS:
        keys = [_fit_key(k) for k in keys]
    return keys


def build_records(table: pa.Table, field: str) -> Records:
    """The records of the core's `raw` column, sizes (data + key bytes) computed column-wise."""
    raw = pc.cast(table.column("raw"), pa.binary())  # UTF-8 bytes without a decode/encode trip
    keys = partition_keys(table, field)
    key_bytes = pc.binary_length(pa.array(keys, pa.binary()))
    sizes = pc.add(pc.binary_length(raw), key_bytes).to_pylist()
    return Records(data=raw.to_pylist(), keys=keys, lines=table.column("source_line").to_pylist(), sizes=sizes)


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


@dataclass(frozen=True)
class PackedRecords:
    """Records ready for PutRecords; `shard_ids[i]` is the shard record i must land on (None when unpacked)."""

    data: list[bytes]
    keys: list[str]
    sizes: list[int]
    shard_ids: list[str | None]
    events: list[int]  # events (lines) in each record


def pack_records(data: Sequence[bytes], keys: Sequence[str], sizes: Sequence[int], shard_map: ShardMap | None,
                 max_bytes: int) -> PackedRecords:
    """Join the events of each shard, in order, into records of at most `max_bytes` (data + partition key).

    The Rust core routes each key like Kinesis and joins the lines (eventpipe_core.pack_records). Without a
    shard map or with max_bytes 0, every event stays a record of its own. An event larger than `max_bytes` on
    its own still travels alone (callers drop events over Kinesis' 1 MiB record limit before).
    """
    if shard_map is None or max_bytes <= 0:
        return PackedRecords(list(data), list(keys), list(sizes), [None] * len(data), [1] * len(data))
    packs = eventpipe_core.pack_records(list(data), list(keys), list(shard_map.starts), max_bytes)
    packed_keys = [keys[first] for _, first, _, _ in packs]
    packed_data = [packed for packed, _, _, _ in packs]
    return PackedRecords(data=packed_data, keys=packed_keys,
                         sizes=[record_size(d, k) for d, k in zip(packed_data, packed_keys, strict=True)],
                         shard_ids=[shard_map.shard_ids[shard] for _, _, shard, _ in packs],
                         events=[count for _, _, _, count in packs])
