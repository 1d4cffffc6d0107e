"""`eventpipe query` and `status` over a real SQL catalog (SQLite) with real Iceberg tables and Parquet files,
written here with pyiceberg as the consumer would (the consumer's own writer is tested in tests/consumer)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pyarrow as pa
from eventpipe_cli.catalog import fingerprint, load_catalog, settings_for
from eventpipe_cli.main import app
from eventpipe_cli.state import StatePaths, write_json
from eventpipe_common.tables import (
    RAW_EVENTS,
    TABLE_PROPERTIES,
    raw_events_schema,
)
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.partitioning import PartitionSpec
from typer.testing import CliRunner

PROMOTED = [("amount", "double"), ("currency", "string"), ("product_id", "string"), ("quantity", "long")]


def _rows(n: int, start: int = 0) -> list[dict[str, object]]:
    ts = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
    return [{"event_id": f"e{i}", "event_type": "purchase" if i % 2 else "page_view", "event_ts": ts,
             "event_date": ts.date(), "event_hour": 12, "user_id": f"u_{i % 3}", "session_id": None,
             "properties": "{}", "schema_version": 1, "ingested_at": ts, "job_id": "j1", "shard_id": "s0",
             "sequence_number": str(i), "amount": 10.0 * i if i % 2 else None, "currency": "EUR" if i % 2 else None,
             "product_id": None, "quantity": None} for i in range(start, start + n)]


def _append(state: Path, rows: list[dict[str, object]]) -> None:
    settings = settings_for(state)
    catalog = load_catalog(settings)
    catalog.create_namespace_if_not_exists(settings.namespace)
    schema = raw_events_schema(PROMOTED)
    table = catalog.create_table_if_not_exists(f"{settings.namespace}.{RAW_EVENTS}", schema=schema,
                                               partition_spec=PartitionSpec(),  # day() needs pyiceberg-core
                                               properties=TABLE_PROPERTIES)
    # Arrow schema from the table, not the definition: create_table assigns fresh field ids.
    table.append(pa.Table.from_pylist(rows, schema=schema_to_pyarrow(table.schema())))


def test_query_reads_iceberg_and_the_dbt_models(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "logs").mkdir(parents=True)
    runner = CliRunner()
    assert fingerprint(settings_for(state)) is None
    _append(state, _rows(10))
    first = fingerprint(settings_for(state))
    _append(state, _rows(5, start=10))
    assert fingerprint(settings_for(state)) not in (None, first)

    with duckdb.connect(str(StatePaths.at(state).duckdb)) as connection:
        connection.execute("create schema marts; create table marts.fact_events as select 42 as answer")

    result = runner.invoke(app, ["query", "--state-dir", str(state),
                                 "select event_type, count(*) as n, sum(amount) as revenue from raw_events "
                                 "group by 1 order by 1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "page_view" in result.output and "purchase" in result.output
    assert "490.0" in result.output  # purchases are the odd i of 0..14: 10 * (1 + 3 + ... + 13)
    models = runner.invoke(app, ["query", "--state-dir", str(state), "select answer from warehouse.marts.fact_events"])
    assert models.exit_code == 0 and "42" in models.output, models.output

    bad = runner.invoke(app, ["query", "--state-dir", str(state), "select nope from raw_events"])
    assert bad.exit_code == 1 and "nope" in bad.output


def test_status_reports_tables_jobs_and_transform(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    _append(state, _rows(7))
    write_json(StatePaths.at(state).transform, {"snapshot": "x", "finished_at": 1.0, "ok": True, "runs": 3,
                                               "steps": [{"step": "dbt build", "exit_code": 0, "seconds": 1.0}]})
    result = CliRunner().invoke(app, ["status", "--state-dir", str(state), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["stack"] == {"running": False}
    assert report["tables"]["raw_events"]["total_records"] == "7"
    assert report["tables"]["raw_events_rejected"] is None
    assert report["transform"]["runs"] == 3
    human = CliRunner().invoke(app, ["status", "--state-dir", str(state)], env={"COLUMNS": "200"})
    assert human.exit_code == 0 and "raw_events" in human.output and "dbt build: ok" in human.output


def test_status_shows_the_raw_tables_source_freshness(tmp_path: Path) -> None:
    """The transform step's last `dbt source freshness` (freshness.json, as eventpipe_transform writes it; the dbt
    stage checks the writer) is in the JSON report and on screen, one line per source with its verdict."""
    state = tmp_path / "state"
    state.mkdir()
    assert "source freshness: not checked yet" in CliRunner().invoke(app, ["status", "--state-dir", str(state)]).output
    check = {"checked_at": "2026-01-01T10:00:00+00:00", "status": "warn", "warn_after_minutes": 60,
             "error_after_minutes": 1440,
             "sources": [{"source": "eventpipe.raw_events", "status": "warn",
                          "max_loaded_at": "2026-01-01T07:00:00+00:00", "age_seconds": 10800.0, "message": None}]}
    write_json(StatePaths.at(state).freshness, check)
    report = json.loads(CliRunner().invoke(app, ["status", "--state-dir", str(state), "--json"]).output)
    assert report["freshness"] == check
    shown = CliRunner().invoke(app, ["status", "--state-dir", str(state)], env={"COLUMNS": "200"}).output
    assert ("source freshness of eventpipe.raw_events: warn — newest row 2026-01-01T07:00:00+00:00, 180 min old "
            "(warn after 60 min, error after 1440 min") in shown


def test_status_shows_stopped_shards_from_the_consumer_readiness(tmp_path: Path, kinesis_endpoint: str) -> None:
    """A shard the consumer stopped (a failure that is not content) is shown by `eventpipe status`, read from the
    consumer's real /readyz (503 naming the shard) next to the stream's real shard list (kinesalite)."""
    import os
    import uuid

    import boto3
    from eventpipe_consumer.metrics import ConsumerMetrics

    from tests.helpers.servers import free_port

    stream = f"status-{uuid.uuid4().hex[:8]}"
    kinesis = boto3.client("kinesis", endpoint_url=kinesis_endpoint, region_name="us-east-1")
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.2})
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    metrics = ConsumerMetrics()
    metrics.ready = lambda: (False, {shard: "gave up after 4 attempts: table gone"})
    port = free_port()
    server = metrics.serve("127.0.0.1", port)
    state = tmp_path / "state"
    state.mkdir()
    write_json(StatePaths.at(state).stack, {"pid": os.getpid(), "config": {
        "kinesis_port": int(kinesis_endpoint.rsplit(":", 1)[1]), "stream_name": stream,
        "consumer_metrics_port": port}})
    try:
        result = CliRunner().invoke(app, ["status", "--state-dir", str(state), "--json"])
        human = CliRunner().invoke(app, ["status", "--state-dir", str(state)], env={"COLUMNS": "200"})
    finally:
        server.shutdown()
        kinesis.delete_stream(StreamName=stream)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["consumer"] == {"ready": False, "stopped_shards": {shard: "gave up after 4 attempts: table gone"}}
    assert human.exit_code == 0, human.output
    assert "STOPPED" in human.output and "consumer not ready" in human.output
