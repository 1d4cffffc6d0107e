"""From the core's BatchResult to Kinesis records: pure functions, no I/O.

The record contract (ARCHITECTURE.md): one event per Kinesis record, Data = the event as compact JSON with the
reserved top-level field "_job_id" (the core's `raw` column when called with job_id and include_raw=True).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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


def partition_keys(table: pa.Table, field: str) -> list[str]:
    """The partition key of each record: `field` when present and non-empty, else event_id."""
    event_id = table.column("event_id")
    if field == "event_id" or field not in table.column_names:
        keys = event_id
    else:
        column = pc.cast(table.column(field), pa.string())
        missing = pc.or_kleene(pc.is_null(column), pc.equal(column, ""))
        keys = pc.if_else(pc.fill_null(missing, True), event_id, column)
    return [_fit_key(k) for k in keys.to_pylist()]


def build_records(table: pa.Table, field: str) -> Records:
    data = pc.cast(table.column("raw"), pa.binary()).to_pylist()  # UTF-8 bytes without a decode/encode trip
    keys = partition_keys(table, field)
    return Records(data=data, keys=keys, lines=table.column("source_line").to_pylist(),
                   sizes=[record_size(d, k) for d, k in zip(data, keys, strict=True)])


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
