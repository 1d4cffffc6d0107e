"""Typed settings shared by the components, read from EVENTPIPE_* environment variables.

Each component defines one settings class that subclasses `PipelineSettings` and adds its own fields, so a
single ConfigMap (written by the operator) or the local stack's environment configures every process the same
way. The defaults are the embedded local stack: state in ./.eventpipe, SQLite everywhere, Kinesis on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PipelineSettings(BaseSettings):
    """What every component of one pipeline must agree on: names, endpoints, catalog and stores."""

    model_config = SettingsConfigDict(env_prefix="EVENTPIPE_", env_nested_delimiter="__", extra="ignore")

    pipeline_name: str = Field("shop", description="Name of the EventPipeline this process serves.")
    state_dir: Path = Field(Path(".eventpipe"), description="Local state (embedded defaults only).")
    log_level: str = "INFO"

    # Stream
    stream_name: str = "eventpipe-shop"
    aws_region: str = "us-east-1"
    kinesis_endpoint_url: str | None = Field(None, description="Unset in production: the AWS endpoint is used.")

    # Iceberg
    namespace: str = "shop"
    catalog_name: str = "eventpipe"
    catalog_properties: dict[str, str] = Field(
        default_factory=dict,
        description="pyiceberg catalog properties (type, uri, warehouse, s3.endpoint, ...). "
        "Empty means the embedded SQL catalog on SQLite under state_dir.",
    )

    # Job store (eventpipe_jobs) shared by ingest (writes published/failed) and the consumer (writes committed)
    job_store_dsn: str | None = Field(None, description="SQLAlchemy URL; empty means SQLite under state_dir.")

    # The pipeline's event schema (JSON), compiled by eventpipe_core.Schema; empty means the envelope contract.
    schema_path: Path | None = None

    def resolved_catalog_properties(self) -> dict[str, str]:
        """Catalog properties, defaulting to a SQL catalog on SQLite with a local warehouse folder."""
        if self.catalog_properties:
            return dict(self.catalog_properties)
        state = self.state_dir.resolve()
        return {
            "type": "sql",
            "uri": f"sqlite:///{state / 'catalog.db'}",
            "warehouse": (state / "warehouse").as_uri(),
        }

    def resolved_job_store_dsn(self) -> str:
        return self.job_store_dsn or f"sqlite:///{(self.state_dir / 'jobs.db').resolve()}"

    def load_schema_json(self) -> str | None:
        """The pipeline schema as JSON text, or None for the envelope contract."""
        if self.schema_path is None:
            return None
        return self.schema_path.read_text(encoding="utf-8")

    def public_dict(self) -> dict[str, Any]:
        """Settings as a dict for logs: no field here is secret, secrets live in components' own fields."""
        return self.model_dump(mode="json")
