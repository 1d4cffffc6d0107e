"""The audit line of an Iceberg commit (Property 42): one JSON log line per commit, built here, logged by the
consumer, so that an operator can tie every snapshot to its files, counts, shards and sequence ranges."""

from __future__ import annotations

from typing import Any

from eventpipe_consumer.iceberg import CommitOutcome

AUDIT_MESSAGE = "iceberg_commit"


def audit_fields(outcome: CommitOutcome, seconds: float) -> dict[str, Any]:
    """The key-values of the audit line (sequence numbers as strings: they exceed JSON's safe integers)."""
    return {
        "table": outcome.table,
        "snapshot_id": outcome.snapshot_id,
        "data_files": list(outcome.data_files),
        "record_count": outcome.record_count,
        "shards": sorted(outcome.shard_ranges),
        "sequence_ranges": {k: [str(a), str(b)] for k, (a, b) in sorted(outcome.shard_ranges.items())},
        "conflicts": outcome.conflicts,
        "commit_seconds": round(seconds, 4),
    }


def log_commit(log: Any, outcome: CommitOutcome, seconds: float) -> None:
    log.info(AUDIT_MESSAGE, **audit_fields(outcome, seconds))
