"""The operator's own settings (EVENTPIPE_OPERATOR_* environment variables), set by the Helm chart."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """How the operator runs: who it is to the API server, what it deploys, how often it looks again."""

    model_config = SettingsConfigDict(env_prefix="EVENTPIPE_OPERATOR_", extra="ignore")

    field_manager: str = Field(default="eventpipe-operator",
                               description="Server-side apply field manager of every child.")
    services_image: str = Field(default="ghcr.io/eventpipe/services:0.1.0",
                                description="Image of ingest and consumer unless a pipeline names its own.")
    analytics_image: str = Field(default="ghcr.io/eventpipe/analytics:0.1.0",
                                 description="Image of the DAG's dbt and GX task pods (dag.json pods.image).")
    monitor_interval_seconds: float = Field(default=15.0, gt=0, description="Status refresh and lag-scaling period.")
    monitor_initial_delay_seconds: float = Field(default=5.0, ge=0)
    metrics_port: int = Field(default=8080, ge=0, description="The operator's own /metrics; 0 disables it.")
    metrics_host: str = Field(default="127.0.0.1",
                              description="Bind address of /metrics; the Helm chart sets 0.0.0.0 inside the pod.")
    lag_metric: str = Field(default="eventpipe_consumer_lag_seconds",
                            description="Gauge (per shard) of the consumers' lag: in seconds when its name ends "
                                        "in _seconds, else milliseconds (MillisBehindLatest).")
    lag_scrape_timeout_seconds: float = Field(default=2.0, gt=0)
    provision_timeout_seconds: float = Field(default=120.0, gt=0,
                                             description="How long to wait for a stream to be ACTIVE.")
    allowed_catalog_uris: list[str] = Field(
        default_factory=list,
        description="Regular expressions (full match) a catalog property naming a URI/endpoint/URL must match "
                    "before the operator loads that catalog with its own credentials; empty allows none.")
    allowed_kinesis_endpoints: list[str] = Field(
        default_factory=list,
        description="Regular expressions (full match) for spec.aws.kinesisEndpointUrl; empty allows only AWS's.")
    peering_name: str = "eventpipe"
    log_level: str = "INFO"
