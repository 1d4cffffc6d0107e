"""The transform's one settings object: the pipeline settings plus where the dbt project and warehouse are."""

from __future__ import annotations

from pathlib import Path

from eventpipe_common.settings import PipelineSettings
from pydantic import Field, model_validator

# dbt/python/eventpipe_transform/settings.py -> dbt/
DEFAULT_PROJECT_DIR = Path(__file__).resolve().parents[2]


class TransformSettings(PipelineSettings):
    """EVENTPIPE_* settings of the transform (dbt) step."""

    dbt_project_dir: Path = Field(DEFAULT_PROJECT_DIR, description="The dbt project (dbt/ of the repository).")
    dbt_profiles_dir: Path | None = Field(
        None, description="Directory of profiles.yml; empty means the project's own (secrets come from env vars)."
    )
    dbt_target: str = Field("duckdb", description="dbt target: duckdb (embedded) or snowflake.")
    dbt_threads: int = Field(2, ge=1, description="dbt threads.")
    snapshot_id: str | None = Field(
        None, description="raw_events snapshot dbt reads (the DAG's resolved one); empty: the current snapshot.")
    freshness_warn_after_minutes: int = Field(
        60, ge=1, description="Source freshness: warn when raw_events' newest ingested_at is older than this.")
    freshness_error_after_minutes: int = Field(
        1440, ge=1, description="Source freshness: error when raw_events' newest ingested_at is older than this.")

    @model_validator(mode="after")
    def _freshness_order(self) -> TransformSettings:
        if self.freshness_error_after_minutes <= self.freshness_warn_after_minutes:
            raise ValueError("freshness_error_after_minutes must be greater than freshness_warn_after_minutes")
        return self

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB database the duckdb target builds (read by GX and the dashboard)."""
        return self.state_dir.resolve() / "warehouse.duckdb"

    @property
    def freshness_path(self) -> Path:
        """The last source freshness result (`eventpipe status` shows it)."""
        return self.state_dir.resolve() / "freshness.json"

    @property
    def dbt_work_dir(self) -> Path:
        """dbt's target/ and logs/ go under the state dir, so concurrent pipelines never share them."""
        return self.state_dir.resolve() / "dbt"
