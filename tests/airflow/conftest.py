"""Fixtures of the Airflow suite. Airflow reads its configuration when first imported, so the environment is set
here, before any test imports it: a metadata DB on SQLite in a temporary AIRFLOW_HOME, the repository's dags/
folder, and the factory reading dag.json files from a temporary folder with tasks as analytics-venv
subprocesses. Everything runs in this one pytest process (Airflow imports slowly)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ANALYTICS_PYTHON = REPO / ".venvs" / "analytics" / "bin" / "python"
HOME = Path(tempfile.mkdtemp(prefix="eventpipe-airflow-"))
DEFINITIONS = HOME / "definitions"
STATE = HOME / "state"
DEFINITIONS.mkdir()
STATE.mkdir()

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
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO / "tests" / "operator"))


def definition(pipeline: str = "shop", **overrides: Any) -> dict[str, Any]:
    """A dag.json as the operator writes it (operator/README.md), for namespace `shop`'s tables."""
    base: dict[str, Any] = {
        "apiVersion": "eventpipe.io/v1alpha1", "kind": "PipelineDag", "pipeline": pipeline,
        "k8sNamespace": pipeline, "enabled": True, "trigger": "on-snapshot", "schedule": None,
        "settingsConfigMap": f"{pipeline}-config", "catalog": {"name": "eventpipe", "namespace": "shop"},
        "tables": {"rawEvents": "shop.raw_events", "rejected": "shop.raw_events_rejected"},
        "dbt": {"target": "duckdb", "select": []}, "gx": {"suites": ["staging", "marts"]},
        "alerts": [{"type": "log", "severity": "warning"}],
    }
    base.update(overrides)
    return base


def operator_config_maps(pipelines: list[dict[str, Any]], analytics_image: str) -> list[dict[str, Any]]:
    """The `<name>-dag` ConfigMaps of EventPipeline objects, built by the operator's own builder
    (eventpipe_operator.manifests.dag_config_map) in the operator's venv, as the operator applies them."""
    script = ("import json, sys\n"
              "from eventpipe_operator.spec import Pipeline\n"
              "from eventpipe_operator.manifests import dag_config_map\n"
              "bodies, image = json.load(sys.stdin)\n"
              "print(json.dumps([dag_config_map(Pipeline.from_body(b), image) for b in bodies]))\n")
    out = subprocess.run([str(REPO / ".venvs" / "operator" / "bin" / "python"), "-c", script],
                         input=json.dumps([pipelines, analytics_image]), capture_output=True, text=True,
                         check=True, timeout=120)
    return list(json.loads(out.stdout))


def write_definition(folder: Path, data: dict[str, Any]) -> Path:
    path = folder / f"{data['pipeline']}.json"
    path.write_text(json.dumps(data))
    return path


def commit_snapshot(state_dir: Path, count: int, seed: int) -> str:
    """A real consumer-style commit (Rust core + pyiceberg) in the analytics venv; returns the snapshot id."""
    out = subprocess.run([str(ANALYTICS_PYTHON), str(Path(__file__).parent / "write_snapshot.py"), str(state_dir),
                          str(count), str(seed)], check=True, capture_output=True, text=True, timeout=300)
    return out.stdout.strip().splitlines()[-1]


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
