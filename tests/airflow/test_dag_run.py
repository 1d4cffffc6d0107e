"""`dag.test()` in local mode: the pipeline's DAG runs dbt and GX for real (analytics venv subprocesses) on
DuckDB over Iceberg tables written as the consumer writes them, on a new snapshot; a failing task is retried
and logged; a second run of the same snapshot does nothing (Properties 18, 19, 20, 40 end to end)."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.airflow_helpers import ANALYTICS_PYTHON, STATE, commit_snapshot, definition, write_definition


def flaky_python(folder: Path) -> Path:
    """The analytics interpreter behind a launcher that fails its first call. A task failure we cannot cause
    otherwise without breaking the data; every later call runs the real analytics python."""
    script = folder / "flaky-python"
    flag = folder / "failed-once"
    script.write_text(f"#!/bin/sh\nif [ ! -e '{flag}' ]; then touch '{flag}'; "
                      f"echo 'injected launcher failure' >&2; exit 3; fi\nexec '{ANALYTICS_PYTHON}' \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def run_log() -> list[dict[str, Any]]:
    path = STATE / "airflow" / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.usefixtures("airflow_db", "analytics_ready")
def test_new_snapshot_runs_dbt_and_gx_retries_a_failure_and_reruns_are_noops(
        definitions_dir: Path, tmp_path: Path) -> None:
    from eventpipe_dags.definition import PipelineDag
    from eventpipe_dags.factory import build_dag
    from eventpipe_dags.settings import DagsSettings

    snapshot = commit_snapshot(STATE, 400, seed=7)
    data = definition("shop")
    write_definition(definitions_dir, data)
    settings = DagsSettings(analytics_python=flaky_python(tmp_path), retries=2, retry_delay_seconds=1,
                            max_retry_delay_seconds=2, poll_interval_seconds=0.2)
    dag = build_dag(PipelineDag.model_validate(data), settings)

    run = dag.test()
    assert states(run) == {task: "success" for task in (
        "resolve_snapshot", "dbt_build", "gx_staging", "gx_marts", "publish_results", "mark_processed")}
    assert str(run.state) == "success"
    dbt_try = next(ti for ti in run.get_task_instances() if ti.task_id == "dbt_build")
    assert dbt_try.try_number == 2  # the injected failure, then the retry that built the models

    # The warehouse was built by dbt from the snapshot's events; GX kept its results.
    query = ("import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
             "print(c.execute('select count(*) from marts.fact_events').fetchone()[0])")
    facts = subprocess.run([str(ANALYTICS_PYTHON), "-c", query, str(STATE / "warehouse.duckdb")], check=True,
                           capture_output=True, text=True, timeout=120).stdout.strip()
    assert int(facts) > 0
    assert any((STATE / "quality").rglob("*.json"))

    log = run_log()
    retry = next(r for r in log if r["event"] == "task_retry")
    assert (retry["pipeline"], retry["task_id"], retry["snapshot_id"], retry["try_number"]) == (
        "shop", "dbt_build", snapshot, 1)
    assert "exit code 3" in retry["error"]
    done = [r for r in log if r["event"] == "run_succeeded"]
    assert [r["snapshot_id"] for r in done] == [snapshot]
    assert json.loads((STATE / "transform.json").read_text())["snapshot"].split(":")[0] == snapshot

    # The same snapshot again (a manual trigger naming it): resolved as processed, nothing runs.
    again = dag.test(run_conf={"snapshot_id": snapshot})
    assert set(states(again).values()) == {"skipped"}
    assert [r["snapshot_id"] for r in run_log() if r["event"] == "run_succeeded"] == [snapshot]
