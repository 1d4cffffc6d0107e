"""The factory's one settings object (EVENTPIPE_DAGS_* environment variables of the Airflow processes)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DagsSettings(BaseSettings):
    """Where definitions come from and how tasks are launched; the defaults are the local stack's."""

    model_config = SettingsConfigDict(env_prefix="EVENTPIPE_DAGS_", extra="ignore")

    mode: Literal["local", "kubernetes"] = Field(
        default="local", description="local: tasks are subprocesses in the analytics venv; kubernetes: pods.")
    source: Literal["folder", "kubernetes"] = Field(
        default="folder",
        description="folder: <definitions_dir>/*.json; kubernetes: ConfigMaps labelled eventpipe.io/dag.")
    definitions_dir: Path = Field(default=Path(".eventpipe/dags"),
                                  description="Folder of dag.json files (source=folder).")
    kube_namespace: str | None = Field(default=None, description="Only this namespace's ConfigMaps; empty: all.")
    kubeconfig: str | None = Field(default=None, description="Kubeconfig file; empty: the in-cluster service account.")
    analytics_python: Path = Field(default=Path(sys.executable),
                                   description="Python of the analytics venv (local mode).")
    analytics_image: str = Field(default="ghcr.io/eventpipe/analytics:0.1.0",
                                 description="Task pods' image unless the definition names one.")
    state_host_path: str | None = Field(
        default=None,
        description="kubernetes mode on ONE local node only: a host folder every task pod mounts as its state dir "
        "(at the same path), so the DuckDB warehouse dbt builds is the one GX reads. Unset: an emptyDir per pod, "
        "and a cluster pipeline uses the snowflake target.")
    retries: int = Field(default=3, ge=0)
    retry_delay_seconds: float = Field(default=30.0, gt=0)
    max_retry_delay_seconds: float = Field(default=600.0, gt=0)
    poll_interval_seconds: float = Field(default=15.0, gt=0, description="How often the trigger looks for a snapshot.")
    sensor_timeout_seconds: float = Field(default=7 * 24 * 3600.0, gt=0,
                                          description="A waiting run gives up after this long; the next one waits on.")
    task_timeout_seconds: float = Field(default=3600.0, gt=0)
