"""The durable part of the dedupe window: event ids the table already holds from a shard, read when it is taken.

The per-shard window (records.DedupeWindow) lives in memory; alone, it forgets everything at a restart, a lease
takeover or a reshard, so a client's retry of an event (same event_id, new request, e.g. after a 503) that
reached Kinesis after the first copy was committed would be committed twice. The committed rows are the
durable record of what was seen: when a consumer takes a shard, it seeds the shard's window with the event ids
committed from that shard AND from its parent shards (a reshard sends a partition key to a child) whose
`ingested_at` is within the last `window_seconds`, the newest `capacity` of them. Reading committed rows (not a
side store) keeps the window exactly as durable as the data: nothing uncommitted is ever remembered, so a crash
cannot make the consumer drop an event that never landed.

The read is bounded by the window, not by the table: only the manifests that snapshots of the window added are
opened (one read of the current manifest list), only their live files are read, and only the event_id,
ingested_at and shard_id columns, filtered by shard and `ingested_at` (Parquet statistics skip the rest).
Snapshots are chosen with a margin of CLOCK_SKEW_SECONDS, since `ingested_at` is Kinesis's arrival time and a
snapshot's timestamp is the committer's clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pyarrow.compute as pc
from pyiceberg.expressions import And, GreaterThanOrEqual, In
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.manifest import DataFile, ManifestContent
from pyiceberg.table import FileScanTask, Table

CLOCK_SKEW_SECONDS = 300.0


def files_added_since(table: Table, since_ms: int) -> list[DataFile]:
    """Live data files of the current snapshot that snapshots at or after `since_ms` added (a compaction's
    rewrite counts as added when it is recent; older files are not opened)."""
    metadata = table.metadata
    current = metadata.current_snapshot()
    if current is None:
        return []
    recent = {s.snapshot_id for s in metadata.snapshots if s.timestamp_ms >= since_ms}
    files: list[DataFile] = []
    for manifest in current.manifests(table.io):
        if manifest.content != ManifestContent.DATA or manifest.added_snapshot_id not in recent:
            continue
        files.extend(entry.data_file for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True))
    return files


def recent_event_ids(table: Table, shard_ids: Sequence[str], now: datetime, window_seconds: float,
                     capacity: int) -> list[str]:
    """The ids of events committed from `shard_ids` with ingested_at >= now - window_seconds, oldest first,
    at most the newest `capacity` (empty when the window is off or the table has no snapshot)."""
    if window_seconds <= 0 or capacity <= 0 or not shard_ids:
        return []
    since = now - timedelta(seconds=window_seconds)
    files = files_added_since(table, int((since.timestamp() - CLOCK_SKEW_SECONDS) * 1000))
    if not files:
        return []
    schema = table.schema()
    # pyiceberg 0.12's predicates are pydantic models whose generated signatures mypy's plugin gets wrong.
    row_filter = And(In("shard_id", set(shard_ids)),  # type: ignore[call-arg,arg-type]
                     GreaterThanOrEqual("ingested_at", since.isoformat()))  # type: ignore[call-arg,arg-type]
    rows = ArrowScan(table.metadata, table.io, schema.select("event_id", "ingested_at"), row_filter).to_table(
        [FileScanTask(data_file) for data_file in files])
    rows = rows.take(pc.sort_indices(rows, sort_keys=[("ingested_at", "ascending")]))
    if rows.num_rows > capacity:
        rows = rows.slice(rows.num_rows - capacity)
    return [str(event_id) for event_id in rows["event_id"].to_pylist()]
