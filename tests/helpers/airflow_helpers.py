"""Helpers of the Airflow tests: the temporary AIRFLOW_HOME with its dag.json and state folders (created once per
test process; tests/airflow/conftest.py points Airflow at them), dag.json definitions as the operator writes them,
and real Iceberg commits made in the analytics venv."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ANALYTICS_PYTHON = REPO / ".venvs" / "analytics" / "bin" / "python"
HOME = Path(tempfile.mkdtemp(prefix="eventpipe-airflow-"))
DEFINITIONS = HOME / "definitions"
STATE = HOME / "state"
DEFINITIONS.mkdir()
STATE.mkdir()


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
    out = subprocess.run([str(ANALYTICS_PYTHON), "-m", "tests.helpers.write_snapshot", str(state_dir), str(count),
                          str(seed)], cwd=REPO, check=True, capture_output=True, text=True, timeout=300)
    return out.stdout.strip().splitlines()[-1]
