"""Job counts carried by the raw_events snapshots, so that the job store can be brought up to date from the table.

Each consumer commit of raw_events writes, in its snapshot summary, how many event records of each job id it
covers (`eventpipe.jobs`). The job store applies a snapshot's counts once (keyed by table uuid and snapshot id).
A crash between the Iceberg commit and the job update, or a commit that landed while its client saw an error
(the retry then finds nothing left to commit), leaves a snapshot whose counts were never applied: `reconcile`
finds such snapshots among the recent ones and applies them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

from eventpipe_consumer import checkpoints

JOBS_PROPERTY = "eventpipe.jobs"
RECONCILE_DEPTH = 500  # snapshots looked at, newest first (a few minutes of commits; expiry keeps days)


def encode(counts: Mapping[str, int]) -> dict[str, str]:
    """Summary properties for a commit covering `counts` (job id -> event records); none when it covers no job."""
    if not counts:
        return {}
    return {JOBS_PROPERTY: json.dumps(dict(sorted(counts.items())), separators=(",", ":"))}


def decode(summary: Mapping[str, str]) -> dict[str, int]:
    text = summary.get(JOBS_PROPERTY)
    if not text:
        return {}
    return {str(job): int(n) for job, n in json.loads(text).items()}


def snapshot_key(table_uuid: uuid.UUID, snapshot_id: int) -> str:
    return f"{table_uuid}:{snapshot_id}"


def pending(table: Table, stream: str, depth: int = RECONCILE_DEPTH) -> list[tuple[str, dict[str, int]]]:
    """(key, counts) of this stream's recent consumer snapshots that carry job counts, oldest first."""
    out = []
    for index, snapshot in enumerate(ancestors_of(table.metadata.current_snapshot(), table.metadata)):
        if index >= depth:
            break
        summary = snapshot.summary
        if summary is None or summary.get(checkpoints.STREAM_PROPERTY) != stream:
            continue
        counts = decode(summary)
        if counts:
            out.append((snapshot_key(table.metadata.table_uuid, snapshot.snapshot_id), counts))
    return out[::-1]


def reconcile(table: Table, jobs: Any, stream: str) -> int:
    """Apply the counts of recent snapshots the job store has not applied yet; returns how many were applied."""
    table.refresh()
    candidates = pending(table, stream)
    done = jobs.applied_snapshots([key for key, _ in candidates])
    applied = 0
    for key, counts in candidates:
        if key not in done and jobs.record_committed(counts, key):
            applied += 1
    return applied
