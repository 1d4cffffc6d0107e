"""The transform's one settings object: the pipeline settings plus where the dbt project and warehouse are."""

from __future__ import annotations

from pathlib import Path

from eventpipe_common.settings import PipelineSettings
from pydantic import Field

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

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB database the duckdb target builds (read by GX and the dashboard)."""
        return self.state_dir.resolve() / "warehouse.duckdb"

    @property
    def dbt_work_dir(self) -> Path:
        """dbt's target/ and logs/ go under the state dir, so concurrent pipelines never share them."""
        return self.state_dir.resolve() / "dbt"
