"""Start-up checks of the tables' exactly-once state: the checkpoint map and the no-retries property.

A consumer resumes each shard from the checkpoint map in the newest snapshot that holds one. A table that has
snapshots but no map for this stream has lost it (snapshots expired by a tool that does not keep the chain, a
renamed stream, another pipeline's table): starting anyway would read the stream from its horizon and commit
again every event it still retains. So the consumer refuses, with an error that says why, unless the operator
says otherwise (EVENTPIPE_CONSUMER_ALLOW_MISSING_CHECKPOINT=true).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyiceberg.table import Table

from eventpipe_consumer import checkpoints


class MissingCheckpointError(RuntimeError):
    """The table holds data but no checkpoint map for the stream: resuming would duplicate or skip events."""


def missing_checkpoint(table: Table, streams: Sequence[str]) -> str | None:
    """Why starting on `table` would not be exactly once, or None when it is safe: no snapshot, or a map of one
    of `streams` (the consumer's stream, and for raw_events_rejected also its quarantine map's stream)."""
    metadata = table.metadata
    if metadata.current_snapshot() is None or any(
            checkpoints.checkpoint_snapshot(metadata, stream) is not None for stream in streams):
        return None
    stream = streams[0]
    others = sorted(checkpoints.streams_with_maps(metadata) - set(streams))
    name = ".".join(table.name())
    return (f"{name} has {len(metadata.snapshots)} snapshot(s) but none on its main branch holds a checkpoint map "
            f"for stream {stream!r} (maps found for: {others or 'no stream'}). Starting would read the stream "
            "from its horizon (TRIM_HORIZON) and commit again what the table already holds. Likely causes: "
            "snapshots expired by a tool that does not keep the checkpoint chain, a renamed stream, or the table "
            "of another pipeline. To start from the horizon anyway, set "
            "EVENTPIPE_CONSUMER_ALLOW_MISSING_CHECKPOINT=true.")


def check_checkpoints(tables: Sequence[tuple[Table, Sequence[str]]], allow_missing: bool) -> list[str]:
    """Each (table, streams whose map makes it safe): raise MissingCheckpointError for the first table without
    any, unless allowed; returns the reasons that were allowed (for the log)."""
    reasons = [reason for table, streams in tables if (reason := missing_checkpoint(table, streams)) is not None]
    if reasons and not allow_missing:
        raise MissingCheckpointError(reasons[0])
    return reasons
