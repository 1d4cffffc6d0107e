"""What one transform run reads and reports: the run's raw_events snapshot (not whatever is newest), the
pipeline's own namespace and promoted columns, source freshness against the thresholds, and the marts'
contracts. Real `python -m eventpipe_transform` subprocesses on DuckDB over Iceberg tables."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from eventpipe_transform import cli
from eventpipe_transform.settings import TransformSettings

from tests.helpers.dbt_pipelines import run_cli
from tests.helpers.pipeline_writer import SHOP_SCHEMA, PipelineWriter

REPO_ROOT = Path(__file__).resolve().parents[2]

NOW = dt.datetime.now(dt.UTC)


def _events(prefix: str, count: int, at: dt.datetime) -> list[dict[str, Any]]:
    return [{"event_id": f"{prefix}{i}", "event_type": "page_view", "timestamp": at.isoformat(),
             "user_id": f"u{i % 3}", "properties": {}} for i in range(count)]


def _event_ids(state: Path) -> set[str]:
    with duckdb.connect(str(state / "warehouse.duckdb"), read_only=True) as conn:
        return {row[0] for row in conn.execute("select event_id from marts.fact_events").fetchall()}


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def test_a_snapshot_committed_after_resolve_is_not_read_and_the_namespace_is_the_pipelines(tmp_path: Path) -> None:
    """The DAG resolves snapshot S and passes it as EVENTPIPE_SNAPSHOT_ID; a consumer commit after that (S2)
    must not reach this run's models. The next run (S2 resolved) reads it. The pipeline's namespace is not the
    shop example's: it comes from EVENTPIPE_NAMESPACE. The marts keep their contracts."""
    writer = PipelineWriter(tmp_path, namespace="clicks")
    writer.commit(_events("first-", 5, NOW), NOW)
    resolved = writer.snapshot_id()
    writer.commit(_events("late-", 4, NOW), NOW)  # committed after the run resolved its snapshot
    env = {"EVENTPIPE_NAMESPACE": "clicks"}

    pinned = run_cli(tmp_path, "build", env={**env, "EVENTPIPE_SNAPSHOT_ID": resolved})
    assert pinned.returncode == 0, pinned.stderr[-3000:]
    assert _event_ids(tmp_path) == {f"first-{i}" for i in range(5)}
    started = next(line for line in _json_lines(pinned.stderr) if line["message"] == "dbt started")
    assert started["vars"]["raw_events_snapshot_id"] == resolved
    assert started["vars"]["eventpipe_namespace"] == "clicks"
    assert "/clicks/raw_events/" in started["vars"]["raw_events_metadata"]

    following = run_cli(tmp_path, "build", "--snapshot-id", writer.snapshot_id(), env=env)
    assert following.returncode == 0, following.stderr[-3000:]
    assert _event_ids(tmp_path) == {f"first-{i}" for i in range(5)} | {f"late-{i}" for i in range(4)}
    assert_marts_contracts(tmp_path)


def assert_marts_contracts(state: Path) -> None:
    """Every mart the dashboard and GX read has an enforced contract naming each column with the type DuckDB
    built (the build above enforced it); the project requires the dbt minor it is tested with."""
    import dbt.version

    manifest = json.loads((state / "dbt" / "target" / "manifest.json").read_text())
    with duckdb.connect(str(state / "warehouse.duckdb"), read_only=True) as conn:
        for mart in ("dim_users", "dim_products", "fact_events"):
            node = manifest["nodes"][f"model.eventpipe.{mart}"]
            assert node["contract"]["enforced"] is True
            declared = [(c["name"], c["data_type"].upper()) for c in node["columns"].values()]
            built = conn.execute("select column_name, data_type from information_schema.columns where "
                                 "table_schema = 'marts' and table_name = ? order by ordinal_position",
                                 [mart]).fetchall()
            assert sorted(declared) == sorted(built), mart
    project = yaml.safe_load((REPO_ROOT / "dbt" / "dbt_project.yml").read_text())
    installed = tuple(int(p) for p in dbt.version.__version__.split(".")[:2])
    assert project["require-dbt-version"] == [">=1.11.0", "<1.12.0"] and installed == (1, 11)


def test_a_snapshot_the_table_does_not_have_is_a_configuration_error(tmp_path: Path) -> None:
    writer = PipelineWriter(tmp_path)
    writer.commit(_events("e", 2, NOW), NOW)
    for wrong in (str(int(writer.snapshot_id()) + 1), "12; drop table x"):
        proc = run_cli(tmp_path, "build", "--snapshot-id", wrong)
        assert proc.returncode == 2, proc.stderr[-2000:]
        error = _json_lines(proc.stderr)[-1]
        assert error["level"] == "error" and error["snapshot_id"] in (wrong, str(int(writer.snapshot_id()) + 1))
    assert not (tmp_path / "warehouse.duckdb").exists()


@pytest.mark.parametrize(("age_minutes", "error_after", "status", "code"), [
    (5, 1440, "pass", 0),     # fresh
    (120, 1440, "warn", 0),   # past the 60-minute warning, under the error threshold
    (120, 90, "error", 1),    # past an error threshold the pipeline's settings lowered
])
def test_source_freshness_against_the_pipelines_thresholds(tmp_path: Path, age_minutes: int, error_after: int,
                                                           status: str, code: int) -> None:
    """`eventpipe_transform freshness` reads raw_events' newest ingested_at; the thresholds are settings
    (EVENTPIPE_FRESHNESS_*); the verdict is logged and kept in freshness.json for `eventpipe status`."""
    writer = PipelineWriter(tmp_path)
    loaded = NOW - dt.timedelta(minutes=age_minutes)
    writer.commit(_events("old-", 3, loaded), loaded)
    writer.commit(_events("older-", 2, loaded), loaded - dt.timedelta(hours=5))
    proc = run_cli(tmp_path, "freshness", env={"EVENTPIPE_FRESHNESS_ERROR_AFTER_MINUTES": str(error_after)})
    assert proc.returncode == code, proc.stderr[-3000:]
    report = json.loads((tmp_path / "freshness.json").read_text())
    assert report["status"] == status and report["error_after_minutes"] == error_after
    [source] = report["sources"]
    assert source["source"] == "eventpipe.raw_events" and source["status"] == status
    assert abs(dt.datetime.fromisoformat(source["max_loaded_at"]) - loaded) < dt.timedelta(seconds=1)
    assert source["age_seconds"] >= age_minutes * 60
    logged = [line for line in _json_lines(proc.stderr) if line["message"] == "source freshness"]
    assert [(line["source"], line["status"]) for line in logged] == [("eventpipe.raw_events", status)]


def test_a_stale_source_is_reported_by_build_but_does_not_stop_it(tmp_path: Path) -> None:
    writer = PipelineWriter(tmp_path)
    stale = NOW - dt.timedelta(days=3)
    writer.commit(_events("s", 3, stale), stale)
    proc = run_cli(tmp_path, "build", "--select", "stg_events")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "freshness.json").read_text())["status"] == "error"
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute("select count(*) from staging.stg_events").fetchone() == (3,)


def test_freshness_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="greater than"):
        TransformSettings(freshness_warn_after_minutes=120, freshness_error_after_minutes=60)


def test_snowflake_vars_come_from_the_pipeline_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The snowflake target reads no Iceberg metadata: namespace from EVENTPIPE_NAMESPACE, promoted columns from
    the pipeline schema's `promote` list (EVENTPIPE_SCHEMA_PATH), not the shop example's defaults."""
    schema = {**SHOP_SCHEMA, "promote": [{"path": "properties.sku", "column": "sku", "type": "string"}]}
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    monkeypatch.setenv("EVENTPIPE_NAMESPACE", "clicks")
    monkeypatch.setenv("EVENTPIPE_SCHEMA_PATH", str(path))
    settings = cli.build_settings(cli.parse_args(["build", "--target", "snowflake", "--state-dir", str(tmp_path)]))
    dbt_vars = cli.dbt_vars_for(settings)
    assert dbt_vars["eventpipe_namespace"] == "clicks" and dbt_vars["promoted_columns"] == ["sku"]
    monkeypatch.delenv("EVENTPIPE_SCHEMA_PATH")
    assert cli.dbt_vars_for(cli.build_settings(cli.parse_args(["build", "--target", "snowflake"])))[
        "promoted_columns"] == []
