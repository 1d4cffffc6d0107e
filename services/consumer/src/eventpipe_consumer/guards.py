"""Start-up checks of the tables' exactly-once state: the checkpoint map and the no-retries property.

A consumer resumes each shard from the checkpoint map in the newest snapshot that holds one. A table that has
snapshots but no map for this stream has lost it (snapshots expired by a tool that does not keep the chain, a
renamed stream, another pipeline's table): starting anyway would read the stream from its horizon and commit
again every event it still retains. So the consumer refuses, with an error that says why, unless the operator
says otherwise (EVENTPIPE_CONSUMER_ALLOW_MISSING_CHECKPOINT=true).
"""

from __future__ import annotations

from pyiceberg.table import Table

from eventpipe_consumer import checkpoints


class MissingCheckpointError(RuntimeError):
    """The table holds data but no checkpoint map for the stream: resuming would duplicate or skip events."""


def missing_checkpoint(table: Table, stream: str) -> str | None:
    """Why starting on `table` would not be exactly once, or None when it is safe (no snapshot, or a map)."""
    metadata = table.metadata
    if metadata.current_snapshot() is None or checkpoints.checkpoint_snapshot(metadata, stream) is not None:
        return None
    others = sorted(checkpoints.streams_with_maps(metadata) - {stream})
    name = ".".join(table.name())
    return (f"{name} has {len(metadata.snapshots)} snapshot(s) but none on its main branch holds a checkpoint map "
            f"for stream {stream!r} (maps found for: {others or 'no stream'}). Starting would read the stream "
            "from its horizon (TRIM_HORIZON) and commit again what the table already holds. Likely causes: "
            "snapshots expired by a tool that does not keep the checkpoint chain, a renamed stream, or the table "
            "of another pipeline. To start from the horizon anyway, set "
            "EVENTPIPE_CONSUMER_ALLOW_MISSING_CHECKPOINT=true.")


def check_checkpoints(tables: list[Table], stream: str, allow_missing: bool) -> list[str]:
    """Raise MissingCheckpointError for the first table without a map, unless allowed; returns the reasons
    that were allowed (for the log)."""
    reasons = [reason for table in tables if (reason := missing_checkpoint(table, stream)) is not None]
    if reasons and not allow_missing:
        raise MissingCheckpointError(reasons[0])
    return reasons
