"""Fixtures of the Airflow suite. Airflow reads its configuration when first imported, so the environment is set
here, before any test imports it: a metadata DB on SQLite in a temporary AIRFLOW_HOME, the repository's dags/
folder, and the factory reading dag.json files from a temporary folder with tasks as analytics-venv
subprocesses. Everything runs in this one pytest process (Airflow imports slowly). The helpers are in
tests/helpers/airflow_helpers.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.airflow_helpers import ANALYTICS_PYTHON, DEFINITIONS, HOME, REPO, STATE

os.environ.update({
    "AIRFLOW_HOME": str(HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "EVENTPIPE_DAGS_DEFINITIONS_DIR": str(DEFINITIONS),
    "EVENTPIPE_DAGS_ANALYTICS_PYTHON": str(ANALYTICS_PYTHON),
    "EVENTPIPE_DAGS_RETRY_DELAY_SECONDS": "1",
    "EVENTPIPE_DAGS_MAX_RETRY_DELAY_SECONDS": "2",
    "EVENTPIPE_DAGS_POLL_INTERVAL_SECONDS": "0.2",
    "EVENTPIPE_STATE_DIR": str(STATE),
    "EVENTPIPE_NAMESPACE": "shop",
    "EVENTPIPE_PIPELINE_NAME": "shop",
})


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """`airflow db migrate` once for the session (a real metadata DB on SQLite)."""
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True,
                   capture_output=True, timeout=600, env=os.environ.copy())
    return HOME / "airflow.db"


@pytest.fixture(scope="session")
def analytics_ready() -> Path:
    """The analytics venv (dbt, GX) and the Data Docs assets GX renders with, fetched once into the cache."""
    assert ANALYTICS_PYTHON.exists(), "build it with scripts/venv.sh analytics (scripts/test.sh airflow does)"
    subprocess.run([str(ANALYTICS_PYTHON), "-m", "eventpipe_quality", "vendor-assets"], check=True,
                   capture_output=True, timeout=300)
    return ANALYTICS_PYTHON


@pytest.fixture
def definitions_dir() -> Iterator[Path]:
    """The folder the DAG file reads; emptied after each test so tests do not see each other's pipelines."""
    yield DEFINITIONS
    for path in DEFINITIONS.glob("*.json"):
        path.unlink()
