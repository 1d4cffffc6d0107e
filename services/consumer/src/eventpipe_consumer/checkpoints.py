"""The checkpoint map kept in every consumer commit's snapshot summary (the exactly-once protocol).

Each commit to a table writes, in its snapshot summary, the last committed sequence number of EVERY shard of
the stream (the full map, merged with what the table held before), as in Iceberg's Kafka Connect sink. A
restarted consumer, or one taking a lease over, resumes each shard right after the map's value; the lease
store's checkpoint is only a hint. A commit only adds rows whose sequence number is above the map's value at
the moment of the commit (checked again after every optimistic-concurrency retry), so two writers of one shard
can never both commit a record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Snapshot, ancestors_of

CHECKPOINT_PROPERTY = "eventpipe.checkpoints"
STREAM_PROPERTY = "eventpipe.stream"


def sequence_int(sequence_number: str) -> int:
    """Kinesis sequence numbers are decimal strings of up to 128 bits; they order as integers."""
    return int(sequence_number)


def encode(stream: str, shards: Mapping[str, int]) -> dict[str, str]:
    """Snapshot summary properties for a commit carrying `shards` (shard id -> last committed sequence)."""
    return {
        STREAM_PROPERTY: stream,
        CHECKPOINT_PROPERTY: json.dumps({k: str(v) for k, v in sorted(shards.items())}, separators=(",", ":")),
    }


def decode(summary: Mapping[str, str], stream: str) -> dict[str, int] | None:
    """The map of one snapshot summary, or None when the snapshot carries none for this stream."""
    text = summary.get(CHECKPOINT_PROPERTY)
    if text is None or summary.get(STREAM_PROPERTY) != stream:
        return None
    raw = json.loads(text)
    return {str(shard): int(seq) for shard, seq in raw.items()}


def map_stream(summary: Mapping[str, str]) -> str | None:
    """The stream whose map a snapshot summary carries, or None when it carries none."""
    if CHECKPOINT_PROPERTY not in summary:
        return None
    return summary.get(STREAM_PROPERTY)


def streams_with_maps(metadata: TableMetadata) -> set[str]:
    """Every stream that has a map in some snapshot of the table."""
    streams = (map_stream(s.summary) for s in metadata.snapshots if s.summary is not None)
    return {stream for stream in streams if stream is not None}


def checkpoint_snapshot(metadata: TableMetadata, stream: str) -> Snapshot | None:
    """The newest snapshot on the main branch holding a map for `stream` (maintenance commits carry none)."""
    for snapshot in ancestors_of(metadata.current_snapshot(), metadata):
        if snapshot.summary is not None and decode(snapshot.summary, stream) is not None:
            return snapshot
    return None


def read_map(metadata: TableMetadata, stream: str) -> dict[str, int]:
    snapshot = checkpoint_snapshot(metadata, stream)
    if snapshot is None or snapshot.summary is None:
        return {}
    return decode(snapshot.summary, stream) or {}


def merge(existing: Mapping[str, int], advanced: Mapping[str, int]) -> dict[str, int]:
    """The full map after a commit: never moves a shard backwards."""
    merged = dict(existing)
    for shard, seq in advanced.items():
        merged[shard] = max(seq, merged.get(shard, -1))
    return merged

