"""`python -m eventpipe_transform`: the command the local stack and Airflow run after each new snapshot."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.helpers.dbt_pipelines import Pipeline, run_cli
from tests.helpers.pipeline_writer import SHOP_SCHEMA, PipelineWriter

T0 = dt.datetime(2024, 4, 2, 23, 30, tzinfo=dt.UTC)
EVENTS = [
    {"event_id": "c1", "event_type": "signup", "timestamp": T0.isoformat(), "user_id": "u1",
     "properties": {"email": "u1@a.com", "country": "FR", "plan": "free"}},
    {"event_id": "c2", "event_type": "purchase", "timestamp": (T0 + dt.timedelta(hours=1)).isoformat(),
     "user_id": "u1", "session_id": "s1",
     "properties": {"product_id": "p1", "quantity": 2, "amount": 12.5, "currency": "EUR"}},
    {"event_id": "c3", "event_type": "page_view", "timestamp": "2024-04-03T02:00:00+02:00", "properties": {}},
]


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cli_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One real CLI build (subprocess) shared by the tests that only read its output."""
    state = tmp_path_factory.mktemp("cli")
    writer = PipelineWriter(state)
    writer.commit(EVENTS, T0 + dt.timedelta(days=1))
    writer.commit([{"event_id": "bad", "event_type": "purchase"}], T0 + dt.timedelta(days=1, minutes=1))
    return state, run_cli(state, "build")


def test_build_exits_zero_and_logs_json_lines(cli_build: tuple[Path, Any]) -> None:
    """A good build exits 0; stderr is our JSON lines (component transform), one per dbt node, and stdout only
    dbt's own warnings/errors, as JSON too."""
    state, proc = cli_build
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = _json_lines(proc.stderr)
    assert all(line["component"] == "transform" for line in lines)
    nodes = [line for line in lines if line["message"] == "dbt node finished"]
    assert {n["node"] for n in nodes} >= {"model.eventpipe.stg_events", "model.eventpipe.dim_users",
                                          "model.eventpipe.fact_events", "model.eventpipe.dim_products",
                                          "model.eventpipe.int_event_aggregates"}
    assert any(n["node"].startswith("unit_test.") for n in nodes)
    assert lines[-1]["message"] == "dbt finished"
    started = next(line for line in lines if line["message"] == "dbt started")
    assert started["vars"]["raw_events_metadata"].endswith(".metadata.json")
    assert started["vars"]["promoted_columns"] == ["amount", "currency", "product_id", "quantity"]
    _json_lines(proc.stdout)  # parses: nothing but JSON


def test_build_writes_contract_schemas_and_tables(cli_build: tuple[Path, Any]) -> None:
    """warehouse.duckdb in the state dir has exactly the schemas staging, intermediate, marts (no target prefix)
    with the models other components read; the rejected line is in stg_rejected_events."""
    state, proc = cli_build
    assert proc.returncode == 0
    with duckdb.connect(str(state / "warehouse.duckdb"), read_only=True) as conn:
        relations = set(conn.execute("select table_schema || '.' || table_name from information_schema.tables "
                                     "where table_schema not in ('main', 'information_schema', 'pg_catalog')"
                                     ).fetchall())
        fact = conn.execute("select event_date, amount, quantity, user_sk is not null from marts.fact_events "
                            "where event_id = 'c2'").fetchone()
        page_view_date = conn.execute("select event_date from marts.fact_events where event_id = 'c3'").fetchone()
        rejected = conn.execute("select source, job_id, reasons from staging.stg_rejected_events").fetchall()
    assert {r[0] for r in relations} == {
        "staging.stg_events", "staging.stg_users", "staging.stg_products", "staging.stg_rejected_events",
        "intermediate.int_user_versions", "intermediate.int_user_events", "intermediate.int_event_aggregates",
        "marts.dim_users", "marts.dim_products", "marts.fact_events"}
    assert fact == (dt.date(2024, 4, 3), 12.5, 2, True)
    assert page_view_date == (dt.date(2024, 4, 3),)
    assert len(rejected) == 1 and rejected[0][:2] == ("consumer", "job-2") and "timestamp" in rejected[0][2]


def test_docs_generate_describes_every_model_and_column(cli_build: tuple[Path, Any]) -> None:
    """`dbt docs generate` works, and every model and every column it finds in the warehouse has a description."""
    state, _ = cli_build
    proc = run_cli(state, "docs")
    assert proc.returncode == 0, proc.stderr[-3000:]
    target = state / "dbt" / "target"
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    models = {uid: node for uid, node in manifest["nodes"].items() if node["resource_type"] == "model"}
    assert len(models) == 10
    for uid, node in models.items():
        assert node["description"].strip(), uid
        columns = catalog["nodes"][uid]["columns"]
        for name in columns:
            described = node["columns"].get(name.lower(), {}).get("description", "")
            assert described.strip(), f"{uid}.{name} has no description"
    assert (target / "index.html").is_file()


def test_missing_table_exits_2_naming_it(tmp_path: Path) -> None:
    """Without the Iceberg tables the build does not start: exit 2 and an error line naming the table."""
    proc = run_cli(tmp_path, "build")
    assert proc.returncode == 2
    error = _json_lines(proc.stderr)[-1]
    assert error["level"] == "error" and error["table"] == "shop.raw_events"


def test_failing_data_test_exits_1_and_unpromoted_properties_are_unpacked(
        new_pipeline: Callable[..., Pipeline]) -> None:
    """A pipeline schema that promotes nothing and allows a negative amount: the models unpack the properties
    from JSON (same typed columns), and the revenue rule fails the build with exit 1."""
    pipeline = new_pipeline({"event_types": SHOP_SCHEMA["event_types"]})
    refund = {"event_id": "r1", "event_type": "purchase", "timestamp": T0.isoformat(), "user_id": "u1",
              "properties": {"product_id": "p9", "quantity": 1, "amount": -3.0, "currency": "EUR"}}
    pipeline.commit([*EVENTS, refund])
    assert pipeline.build() == 1
    rows = {r["event_id"]: r for r in pipeline.query(
        "select event_id, product_id, amount, currency, quantity from staging.stg_events")}
    assert rows["c2"] == {"event_id": "c2", "product_id": "p1", "amount": 12.5, "currency": "EUR", "quantity": 2}
    assert rows["r1"]["amount"] == -3.0
