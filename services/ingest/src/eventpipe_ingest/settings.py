"""The one settings object of the ingest service: EVENTPIPE_* environment variables (pydantic-settings).

Examples: EVENTPIPE_INGEST_PORT=8000, EVENTPIPE_INGEST_API_KEYS_FILE=/etc/eventpipe/api-keys,
EVENTPIPE_INGEST_REJECT_MODE=whole, EVENTPIPE_INGEST_CORS_ORIGINS='["https://app.example"]'.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from eventpipe_common.settings import PipelineSettings
from pydantic import Field, SecretStr


class RejectMode(StrEnum):
    """What a request with some invalid events gets: the valid ones accepted (partial) or all refused (whole)."""

    PARTIAL = "partial"
    WHOLE = "whole"


class KinesisClient(StrEnum):
    """PutRecords through the lean signed call (eventpipe_ingest.kinesis) or aiobotocore's generic client."""

    LEAN = "lean"
    AIOBOTOCORE = "aiobotocore"


class IngestSettings(PipelineSettings):
    ingest_host: str = "127.0.0.1"
    ingest_port: int = Field(default=8000, ge=0, le=65535)

    # Requests
    ingest_reject_mode: RejectMode = RejectMode.PARTIAL
    ingest_max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1, description="After gzip decompression.")
    ingest_max_events: int = Field(default=10_000, ge=1, description="Events (lines, elements) per request.")
    ingest_max_concurrent_requests: int = Field(
        default=64, ge=1, description="Ingest requests processed at once; more get 429 (backpressure, no queue).")
    ingest_max_body_bytes_in_flight: int = Field(
        default=16 * 1024 * 1024, ge=1,
        description="Decoded body bytes processed at once; a request that would pass it gets 429 (one request is "
                    "always let through). Sized for the 512 MiB pod: see docs/benchmarks.md, ingest memory.")
    ingest_retry_after_seconds: int = Field(default=1, ge=1, description="Retry-After sent with 429 and 503.")

    # Publishing
    ingest_partition_key_field: str = Field(
        default="user_id", description="Record column used as the Kinesis partition key; event_id when empty.")
    ingest_publish_deadline_seconds: float = Field(
        default=10.0, gt=0, description="Kinesis must acknowledge every record of a request within this, else 503.")
    ingest_kinesis_client: KinesisClient = Field(
        default=KinesisClient.LEAN, description="How PutRecords is sent: lean (default) or aiobotocore.")
    ingest_pack_max_bytes: int = Field(
        default=256 * 1024, ge=0, le=1024 * 1024,
        description="Events of one shard are packed into Kinesis records of up to this many bytes (NDJSON lines); "
                    "0 sends one event per record.")
    ingest_publish_concurrency: int = Field(default=8, ge=1, description="PutRecords calls in flight per request.")
    ingest_put_records_in_flight: int = Field(
        default=1, ge=1, description="PutRecords calls in flight per process; calls made while they are out are "
                                     "merged into one (eventpipe_ingest.coalesce).")
    ingest_retry_base_seconds: float = Field(default=0.05, gt=0)
    ingest_retry_max_seconds: float = Field(default=2.0, gt=0)

    # Auth: hashed keys, lines "name:sha256hex" (file, or comma-separated in the env var)
    ingest_auth_enabled: bool = True
    ingest_api_keys_file: Path | None = None
    ingest_api_keys: SecretStr | None = Field(
        default=None, description="Comma-separated name:sha256hex entries (e.g. from a Kubernetes Secret env var).")

    # HTTP
    ingest_cors_origins: list[str] = Field(default_factory=list)

    # Metrics
    ingest_metrics_host: str = "127.0.0.1"
    ingest_metrics_port: int = Field(
        default=0, ge=0, le=65535,
        description="Serve Prometheus /metrics on this port, and not on the API port (no API key guards "
                    "metrics: pods keep them off the public port); 0: at /api/v1/metrics on the API port.")
