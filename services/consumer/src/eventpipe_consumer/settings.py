"""The consumer's one settings object: the pipeline's shared settings plus reading, committing and leasing knobs.

Every field is an EVENTPIPE_* environment variable, e.g. EVENTPIPE_CONSUMER_COMMIT_INTERVAL_SECONDS=5.
"""

from __future__ import annotations

import socket
import uuid
from typing import Literal

from eventpipe_common.settings import PipelineSettings
from pydantic import Field


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class ConsumerSettings(PipelineSettings):
    """Settings of `python -m eventpipe_consumer run` and `maintenance`."""

    # Committing (defaults of the issue: every 5 s or 50,000 records)
    consumer_commit_interval_seconds: float = Field(5.0, gt=0)
    consumer_commit_max_records: int = Field(50_000, gt=0)
    consumer_commit_retries: int = Field(3, ge=0, description="Retries of a failed write or commit.")
    consumer_retry_base_seconds: float = Field(0.2, ge=0, description="First backoff; doubles per retry.")
    consumer_writer: Literal["core", "pyiceberg"] = Field(
        "core", description="Who writes the Parquet data files: the Rust core or pyiceberg's own writer.")

    consumer_allow_missing_checkpoint: bool = Field(
        False, description="Start from the stream's horizon on a table that has snapshots but no checkpoint map "
                           "for this stream (refused by default: it would commit again what the table holds).")

    # Reading (Kinesis limits: 5 GetRecords/s and 2 MB/s per shard)
    consumer_get_records_limit: int = Field(10_000, gt=0, le=10_000)
    consumer_max_buffered_records_per_shard: int = Field(100_000, gt=0)
    consumer_poll_interval_seconds: float = Field(0.2, ge=0.2, description="Minimum gap between GetRecords calls.")
    consumer_idle_backoff_max_seconds: float = Field(2.0, gt=0)
    consumer_dedupe_window: int = Field(
        100_000, ge=0, description="Event ids remembered per shard to drop producers' re-sends (0 disables).")
    consumer_dedupe_window_seconds: float = Field(
        3600.0, ge=0, description="When a shard is taken, its window is seeded with the event ids committed from it "
                                  "and its parents this recently (by ingested_at; 0: memory only, recent_ids.py).")

    # Leases
    consumer_worker_id: str = Field(default_factory=_default_worker_id)
    consumer_lease_store: Literal["sql", "dynamodb"] = "sql"
    consumer_lease_dsn: str | None = Field(None, description="SQLAlchemy URL; empty means SQLite under state_dir.")
    consumer_lease_table: str | None = Field(
        None, description="Lease table name; empty means one per stream (leases.default_table_name).")
    consumer_dynamodb_endpoint_url: str | None = None
    consumer_lease_duration_seconds: float = Field(10.0, gt=0)
    consumer_shard_sync_seconds: float = Field(5.0, gt=0, description="How often the shard list is re-read.")
    consumer_failed_shard_cooldown_seconds: float = Field(
        60.0, ge=0, description="How long a shard stopped after a persistent failure stays unclaimed by this worker.")

    # Observability
    consumer_metrics_port: int = Field(9102, ge=0, description="Prometheus /metrics port; 0 disables it.")
    consumer_metrics_host: str = "127.0.0.1"

    # Maintenance
    maintenance_target_file_bytes: int = Field(128 * 1024 * 1024, gt=0)
    maintenance_min_files_to_compact: int = Field(2, ge=2)
    maintenance_tier_ratio: float = Field(
        4.0, ge=1.0, description="Compaction merges a file only with files at most this many times its size.")
    maintenance_max_pass_bytes: int = Field(
        256 * 1024 * 1024, gt=0, description="The most bytes one compaction pass rewrites (the cheapest groups first).")
    maintenance_snapshot_retention_seconds: float = Field(7 * 24 * 3600.0, ge=0)
    maintenance_orphan_grace_seconds: float = Field(3 * 24 * 3600.0, ge=0)

    def resolved_lease_table(self) -> str:
        from eventpipe_consumer.leases import default_table_name

        return self.consumer_lease_table or default_table_name(self.stream_name)

    def resolved_lease_dsn(self) -> str:
        return self.consumer_lease_dsn or f"sqlite:///{(self.state_dir / 'leases.db').resolve()}"
