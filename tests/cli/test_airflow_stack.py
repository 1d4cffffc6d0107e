"""`eventpipe up --airflow` plans Airflow's four components instead of the light transform loop, all bound to
127.0.0.1, on SQLite in the state folder, reading the pipeline's DAG definition from there."""

from __future__ import annotations

import json
from pathlib import Path

from eventpipe_cli import airflow_stack
from eventpipe_cli.stack import StackConfig, plan_components
from eventpipe_cli.state import StatePaths


def test_airflow_replaces_the_transform_loop(tmp_path: Path) -> None:
    paths = StatePaths.at(tmp_path)
    light = plan_components(StackConfig(state_dir=paths.root, monitoring=False), paths, Path("kinesalite"))
    assert [s.name for s in light][-1] == "transform"

    specs = plan_components(StackConfig(state_dir=paths.root, airflow=True, airflow_port=18080, monitoring=False),
                            paths, Path("kinesalite"))
    names = [s.name for s in specs]
    assert "transform" not in names
    assert names[-4:] == ["airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"]
    assert all("--skip-serve-logs" in s.argv for s in specs[-3::2])  # no log server on all interfaces
    api = specs[-4]
    assert api.argv[-5:] == ["api-server", "--host", "127.0.0.1", "--port", "18080"]
    assert api.ready_url == "http://127.0.0.1:18080/api/v2/monitor/health"
    env = api.env
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{paths.root / 'airflow' / 'airflow.db'}"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"].endswith("/dags")
    assert env["EVENTPIPE_DAGS_DEFINITIONS_DIR"] == str(paths.root / "airflow" / "definitions")
    assert env["EVENTPIPE_STATE_DIR"] == str(paths.root)
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"  # a new pipeline runs without a click


def test_the_local_definition_is_the_operators_shape() -> None:
    data = airflow_stack.local_definition("shop")
    assert json.loads(json.dumps(data)) == data
    assert data["pipeline"] == "shop" and data["tables"] == {"rawEvents": "shop.raw_events",
                                                            "rejected": "shop.raw_events_rejected"}
    assert data["gx"] == {"suites": ["staging", "marts"]} and data["dbt"]["target"] == "duckdb"
