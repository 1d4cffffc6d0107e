"""The state folder: a private dev key kept across restarts, atomic status files, the stack's plan."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest
from eventpipe_cli import monitoring
from eventpipe_cli.stack import HOST, Stack, StackConfig, StackError, plan_components, port_clashes, urls
from eventpipe_cli.state import StatePaths, ensure_dev_key, read_dev_key, read_json, write_json
from eventpipe_cli.status import parse_lag


def test_dev_key_is_private_and_survives_a_restart(tmp_path: Path) -> None:
    paths = StatePaths.at(tmp_path)
    paths.create()
    key = ensure_dev_key(paths)
    assert stat.S_IMODE(paths.dev_key.stat().st_mode) == 0o600
    assert paths.api_keys.read_text().strip().endswith(hashlib.sha256(key.encode()).hexdigest())
    assert key not in paths.api_keys.read_text()
    assert len(key) > 32
    assert ensure_dev_key(paths) == key == read_dev_key(paths)


def test_missing_key_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="eventpipe up"):
        read_dev_key(StatePaths.at(tmp_path))


def test_status_files_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    assert read_json(path) is None
    write_json(path, {"a": 1})
    assert read_json(path) == {"a": 1}
    assert not path.with_suffix(".json.tmp").exists()


def test_every_child_binds_localhost_and_shares_the_state_dir(tmp_path: Path) -> None:
    paths = StatePaths.at(tmp_path)
    config = StackConfig(state_dir=paths.root, ingest_port=18000, kinesis_port=14567, consumer_metrics_port=19102,
                         analytics_python=Path("/x/python"), schema_path=Path("/x/schema.json"), monitoring=False)
    specs = plan_components(config, paths, Path("/bin/kinesalite"), python="/venv/python")
    assert [s.name for s in specs] == ["kinesalite", "consumer", "ingest", "transform"]
    for spec in specs:
        assert spec.env["EVENTPIPE_STATE_DIR"] == str(paths.root)
        assert spec.env["EVENTPIPE_KINESIS_ENDPOINT_URL"] == f"http://{HOST}:14567"
        assert spec.env["EVENTPIPE_SCHEMA_PATH"] == "/x/schema.json"
    kinesalite, consumer, ingest, _ = specs
    assert kinesalite.argv[kinesalite.argv.index("--host") + 1] == HOST
    assert kinesalite.argv[kinesalite.argv.index("--path") + 1] == str(paths.kinesis)
    assert consumer.env["EVENTPIPE_CONSUMER_METRICS_HOST"] == HOST
    assert ingest.env["EVENTPIPE_INGEST_HOST"] == HOST == ingest.env["EVENTPIPE_INGEST_METRICS_HOST"]
    assert all(url.startswith(f"http://{HOST}:") for url in urls(config).values())
    assert json.dumps([s.argv for s in specs]).count(HOST) >= 1


def test_two_servers_on_one_port_are_refused_before_anything_starts(tmp_path: Path) -> None:
    paths = StatePaths.at(tmp_path)
    assert port_clashes(StackConfig(state_dir=paths.root)) == []
    clash = StackConfig(state_dir=paths.root, ingest_port=19103, transform_metrics_port=19103, prometheus_port=19103)
    assert port_clashes(clash) == ["--ingest-port, --transform-metrics-port, --prometheus-port: 19103"]
    # the transform loop's metrics port is not used when Airflow runs the transforms, nor Prometheus's without it
    assert port_clashes(StackConfig(state_dir=paths.root, ingest_port=19103, transform_metrics_port=19103,
                                    airflow=True, monitoring=False)) == []
    stack = Stack(clash, paths, plan_components(clash, paths, Path("/bin/kinesalite")), say=lambda _line: None)
    with pytest.raises(StackError, match="one port for two servers: --ingest-port, --transform-metrics-port"):
        stack.acquire()


def test_lag_is_read_per_shard_from_prometheus_text() -> None:
    text = "\n".join([
        "# HELP eventpipe_consumer_millis_behind_latest lag",
        "# TYPE eventpipe_consumer_millis_behind_latest gauge",
        'eventpipe_consumer_millis_behind_latest{shard_id="shardId-000000000000"} 120.0',
        'eventpipe_consumer_millis_behind_latest{shard_id="shardId-000000000001"} 0.0',
        'eventpipe_consumer_records_total{shard_id="shardId-000000000001"} 5.0',
    ])
    assert parse_lag(text) == {"shardId-000000000000": 120.0, "shardId-000000000001": 0.0}


def test_monitoring_adds_prometheus_and_the_dashboard_on_localhost(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    dashboard_python = tmp_path / "python"
    dashboard_python.write_text("")
    monkeypatch.setenv("EVENTPIPE_PROMETHEUS_BIN", "/usr/bin/prometheus")
    monkeypatch.setenv("EVENTPIPE_DASHBOARD_PYTHON", str(dashboard_python))
    paths = StatePaths.at(tmp_path)
    config = StackConfig(state_dir=paths.root, ingest_port=18000, consumer_metrics_port=19102,
                         prometheus_port=19090, dashboard_port=18501, transform_metrics_port=19103,
                         ingest_metrics_port=19104)
    specs = {s.name: s for s in plan_components(config, paths, Path("/bin/kinesalite"), python="/venv/python")}
    assert list(specs)[-2:] == ["prometheus", "dashboard"]
    assert f"--web.listen-address={HOST}:19090" in specs["prometheus"].argv
    assert specs["dashboard"].argv[specs["dashboard"].argv.index("--server.address") + 1] == HOST
    assert specs["dashboard"].env["EVENTPIPE_PROMETHEUS_URL"] == f"http://{HOST}:19090"
    assert specs["transform"].argv[-2:] == ["--metrics-port", "19103"]
    scrape = monitoring.prometheus_config(config)
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in scrape["scrape_configs"]}
    assert {job["job_name"]: job["metrics_path"] for job in scrape["scrape_configs"]}["ingest"] == "/metrics"
    assert targets == {"ingest": [f"{HOST}:19104"], "consumer": [f"{HOST}:19102"],
                       "operator": [f"{HOST}:{monitoring.OPERATOR_METRICS_PORT}"], "transform": [f"{HOST}:19103"]}
    assert Path(scrape["rule_files"][0]).is_file()
    assert urls(config)["prometheus"] == f"http://{HOST}:19090"
    assert urls(config)["dashboard"] == f"http://{HOST}:18501"
