"""The dashboard's settings, from EVENTPIPE_* environment variables (the local stack's defaults)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    prometheus_url: str
    state_dir: Path
    warehouse: str
    """duckdb (the local stack's <state>/warehouse.duckdb) or snowflake."""
    data_docs_url: str
    """Base URL of the published Data Docs; empty: link the local files (file://)."""
    kubernetes: bool
    """Read EventPipeline status from the Kubernetes API (in the cluster, or with a kubeconfig)."""

    @property
    def duckdb_path(self) -> Path:
        return self.state_dir / "warehouse.duckdb"

    @property
    def quality_db(self) -> Path:
        return self.state_dir / "quality" / "results.duckdb"

    def snowflake(self) -> dict[str, str]:
        keys = {"account": "SNOWFLAKE_ACCOUNT", "user": "SNOWFLAKE_USER", "password": "SNOWFLAKE_PASSWORD",
                "role": "SNOWFLAKE_ROLE", "database": "SNOWFLAKE_DATABASE", "warehouse": "SNOWFLAKE_WAREHOUSE"}
        return {name: os.environ[env] for name, env in keys.items() if os.environ.get(env)}


def load() -> Settings:
    env = os.environ
    return Settings(
        prometheus_url=env.get("EVENTPIPE_PROMETHEUS_URL", "http://127.0.0.1:9090").rstrip("/"),
        state_dir=Path(env.get("EVENTPIPE_STATE_DIR", ".eventpipe")).resolve(),
        warehouse=env.get("EVENTPIPE_DASHBOARD_WAREHOUSE", "duckdb"),
        data_docs_url=env.get("EVENTPIPE_DATA_DOCS_URL", "").rstrip("/"),
        kubernetes=env.get("EVENTPIPE_DASHBOARD_KUBERNETES", "") in ("1", "true", "yes"),
    )
