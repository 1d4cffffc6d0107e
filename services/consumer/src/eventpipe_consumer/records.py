"""From Kinesis records of one shard to rows of raw_events and raw_events_rejected (no I/O).

One call into the Rust core per batch (`eventpipe_core.consume_batch`, eventpipe_core/src/consume.rs), which owns
the Kinesis record contract (ARCHITECTURE.md): a record holds one event or several packed by ingest (single-line
JSON objects joined by "\n"); every line counts as a record of its own that shares the packed record's shard and
sequence number (lineage, checkpoints); an event ingest published has "_job_id" first, read from its first
bytes; a line ingest refused travels as a reject record (`{"_reject":...}`) that becomes a raw_events_rejected
row with source "ingest" and never reaches validation; a record that cannot be one NDJSON line (empty, not
UTF-8, not a JSON object, a line break that is not a pack) is rejected before the batch is parsed. The core
returns the rows with their lineage, the rejects, the job ids and the re-sends dropped against the shard's
window; this module turns them into a `Segment`. The per-line helpers below (`pack_lines`, `job_id_from_prefix`)
call the same Rust code, for the quarantine's line-by-line path.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

import eventpipe_core
import orjson
import pyarrow as pa

# The event ids seen last on one shard, so that a producer's re-send (same event_id) is dropped: kept in Rust, where
# consume_batch reads and updates it without a Python object per id.
from eventpipe_core import DedupeWindow as DedupeWindow

from eventpipe_consumer.checkpoints import sequence_int

JOB_ID_FIELD = "_job_id"

REJECTED_ARROW_SCHEMA = pa.schema([
    pa.field("raw", pa.string(), nullable=False),
    pa.field("reasons", pa.string(), nullable=False),
    pa.field("line", pa.int64()),
    pa.field("source", pa.string(), nullable=False),
    pa.field("job_id", pa.string()),
    pa.field("shard_id", pa.string()),
    pa.field("sequence_number", pa.string()),
    pa.field("rejected_at", pa.timestamp("us", tz="UTC"), nullable=False),
])


class StreamRecord(NamedTuple):
    """One Kinesis record as read: where it sits in the stream and its payload. (A tuple: the lines of a packed
    record become one each, ~125 per record, and a frozen dataclass costs 4x as much to create.)"""

    shard_id: str
    sequence_number: str
    data: bytes
    arrival_us: int  # ApproximateArrivalTimestamp, UTC microseconds


@dataclass(slots=True)
class Segment:
    """The processed form of one GetRecords answer of one shard: contiguous sequence numbers first..last."""

    shard_id: str
    first_sequence: int
    last_sequence: int
    records: pa.Table | None  # raw_events columns with lineage; None when no record was valid
    rejects: list[dict[str, object]]
    received: int  # Kinesis records read
    bytes_read: int
    duplicates: int  # dropped because an earlier record had the same event_id (in the batch or the window)
    # (sequence number, job id) of every event record carrying a job id, whatever became of it (written,
    # dropped as a re-send or in-batch duplicate, rejected): a job is complete once all of them are committed.
    job_events: list[tuple[int, str]] = field(default_factory=list)
    events: int = 0  # lines in those records (one per record unless ingest packed them)
    # The records as read, kept until the commit so that a row that cannot be written is quarantined with its
    # raw line (references to the bytes Kinesis returned: no copy).
    source: Sequence[StreamRecord] = ()


def reject_row_for(record: StreamRecord, raw: str, violations: list[dict[str, object]], line: int | None,
                now: datetime) -> dict[str, object]:
    return {
        "raw": raw,
        "reasons": json.dumps(violations, ensure_ascii=False, default=str),
        "line": line,
        "source": "consumer",
        "job_id": _job_id_of(raw),
        "shard_id": record.shard_id,
        "sequence_number": record.sequence_number,
        "rejected_at": now,
    }


def _job_id_of(raw: str) -> str | None:
    """Best effort: the reserved `_job_id` of a rejected line, when it is a JSON object carrying one."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    job_id = value.get(JOB_ID_FIELD) if isinstance(value, dict) else None
    return job_id if isinstance(job_id, str) else None


def job_id_from_prefix(data: bytes) -> str | None:
    """The job id of an event record as ingest publishes it, from the record's first bytes; None without one."""
    return eventpipe_core.record_job_id(data)


def job_events_of(records: Sequence[StreamRecord]) -> list[tuple[int, str]]:
    out = []
    for record in records:
        job_id = job_id_from_prefix(record.data)
        if job_id is not None:
            out.append((sequence_int(record.sequence_number), job_id))
    return out


def committed_job_counts(segments: Sequence[Segment], ranges: Mapping[str, tuple[int, int]]) -> dict[str, int]:
    """Event records per job id among `segments` whose sequence number lies in the committed `ranges`
    (shard -> (first, last) that one commit added): what the job store is told after that commit."""
    counts: Counter[str] = Counter()
    for segment in segments:
        span = ranges.get(segment.shard_id)
        if span is None or not segment.job_events:
            continue
        first, last = span
        if first <= segment.first_sequence and segment.last_sequence <= last:
            counts.update(job_id for _, job_id in segment.job_events)
        else:  # part of the segment was committed by another writer (rare)
            counts.update(job_id for sequence, job_id in segment.job_events if first <= sequence <= last)
    return dict(counts)


def pack_lines(data: bytes) -> list[bytes] | None:
    """The lines of a packed record (compact JSON objects joined by "\n": every line starts with "{"), or None
    when `data` is not one (no line break, or a pretty-printed / broken record)."""
    return eventpipe_core.record_lines(data)


def unpack(records: Sequence[StreamRecord]) -> Sequence[StreamRecord]:
    """One record per line: the lines of a packed record keep its shard, sequence number and arrival time."""
    if not any(b"\n" in record.data for record in records):
        return records
    out: list[StreamRecord] = []
    for record in records:
        lines = pack_lines(record.data)
        if lines is None:
            out.append(record)
        else:
            shard_id, sequence_number, _, arrival_us = record
            out.extend([StreamRecord(shard_id, sequence_number, line, arrival_us) for line in lines])
    return out


def process_records(records: Sequence[StreamRecord], schema: eventpipe_core.Schema,
                    window: DedupeWindow, now: datetime | None = None) -> Segment:
    """Turn one shard's records into raw_events rows (lineage added, re-sends dropped) and reject rows.

    The window is updated with the event ids kept, so the next segment of the shard drops their re-sends (only
    when the call succeeds: a batch that fails teaches the window nothing).
    """
    if not records:
        raise ValueError("process_records needs at least one record")
    now = now or datetime.now(UTC)
    first_sequence = sequence_int(records[0].sequence_number)  # before the window learns anything
    last_sequence = sequence_int(records[-1].sequence_number)
    result = eventpipe_core.consume_batch(
        [r.data for r in records], [r.sequence_number for r in records], [r.arrival_us for r in records],
        shard_id=records[0].shard_id, window=window, schema=schema)
    rejects: list[dict[str, object]] = []
    for index, source, raw, reasons, line, job_id in result.rejects:
        record = records[index]
        rejects.append({
            "raw": raw,
            "reasons": json.dumps(reasons, ensure_ascii=False, default=str),
            "line": line,
            "source": source,
            "job_id": job_id,
            "shard_id": record.shard_id,
            "sequence_number": record.sequence_number,
            "rejected_at": now,
        })
    job_events: list[tuple[int, str]] = []
    for index, job_id, count in result.job_events:
        job_events += [(sequence_int(records[index].sequence_number), job_id)] * count
    return Segment(
        shard_id=records[0].shard_id,
        first_sequence=first_sequence,
        last_sequence=last_sequence,
        records=result.records if result.parsed else None,
        rejects=rejects,
        received=result.received,
        bytes_read=result.bytes_read,
        duplicates=result.duplicates,
        job_events=job_events,
        events=result.events,
        source=records,
    )


LINEAGE_COLUMNS = ("ingested_at", "shard_id", "sequence_number")


def rejects_table(rows: Sequence[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=REJECTED_ARROW_SCHEMA)
