"""Files written by the core, committed into a real Iceberg table and read back by pyiceberg and DuckDB
(Property 46)."""

from __future__ import annotations

import datetime as dt
import importlib
import itertools
from pathlib import Path
from typing import Any

import duckdb
import eventpipe_core as ec
import pyarrow as pa
import pytest
from eventpipe_common.tables import TABLE_PROPERTIES, raw_events_partition_spec, raw_events_schema
from eventpipe_core.iceberg import commit_data_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyiceberg.catalog.sql import SqlCatalog

from tests.helpers.core_strategies import events, ndjson

PROMOTED = [("amount", "double")]
SCHEMA = ec.Schema({"promote": [{"path": "properties.amount", "column": "amount", "type": "double"}]})
_counter = itertools.count()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> SqlCatalog:
    root = tmp_path_factory.mktemp("iceberg")
    cat = SqlCatalog("core", uri=f"sqlite:///{root}/catalog.db", warehouse=f"file://{root}/warehouse")
    cat.create_namespace("core")
    return cat


def duckdb_connection() -> duckdb.DuckDBPyConnection:
    """DuckDB with the avro and iceberg extensions loaded offline from their PyPI wheels (avro first)."""
    con = duckdb.connect()
    for name in ("avro", "iceberg"):
        package = importlib.import_module(f"duckdb_extension_{name}")
        [path] = Path(package.__path__[0]).glob(f"extensions/v{duckdb.__version__}/{name}.duckdb_extension")
        con.execute(f"LOAD '{path}'")
    return con


@st.composite
def one_day_events(draw: st.DrawFn) -> dict[str, Any]:
    e = draw(events(with_properties=False))
    minute = draw(st.integers(0, 24 * 60 - 1))
    e["timestamp"] = f"2026-05-{draw(st.integers(1, 2)):02d}T{minute // 60:02d}:{minute % 60:02d}:00Z"
    if draw(st.booleans()):
        e["properties"] = {"amount": draw(st.floats(0, 1e6))}
    return e


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(one_day_events(), min_size=1, max_size=15, unique_by=lambda e: e["event_id"]))
def test_iceberg_table_round_trip(catalog: SqlCatalog, tmp_path: Path, items: list[dict[str, Any]]) -> None:
    """Property 46: Iceberg table reading round-trip: records written by write_iceberg_parquet (one file per
    day partition) and fast-appended with commit_data_files read back identically through a pyiceberg scan
    and through DuckDB's iceberg_scan, with the snapshot summary carrying our properties."""
    table = catalog.create_table(
        f"core.events_{next(_counter)}",
        schema=raw_events_schema(PROMOTED),
        partition_spec=raw_events_partition_spec(),
        properties=TABLE_PROPERTIES,
    )
    records = ec.process_batch(ndjson(items), schema=SCHEMA).records
    ingested = pa.array([dt.datetime(2026, 5, 3, tzinfo=dt.UTC)] * records.num_rows, pa.timestamp("us", tz="UTC"))
    records = records.append_column("ingested_at", ingested)
    metas = []
    for day in sorted(set(records.column("event_date").to_pylist())):
        part = records.filter(pa.compute.equal(records.column("event_date"), pa.scalar(day)))
        path = tmp_path / f"{table.name()[-1]}-{day}.parquet"
        metas.append(ec.write_iceberg_parquet(part, str(path), table.schema().model_dump_json()))
    snapshot_id = commit_data_files(table, metas, snapshot_properties={"shard-0": "42"})
    assert snapshot_id is not None
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary["shard-0"] == "42"
    assert snapshot.summary["added-data-files"] == str(len(metas))

    columns = [f.name for f in table.schema().fields if f.name in records.column_names]
    want = records.select(columns).sort_by("event_id").to_pylist()
    scanned = table.scan().to_arrow().select(columns).sort_by("event_id")
    assert scanned.to_pylist() == want
    assert scanned.schema.field("event_ts").type == pa.timestamp("us", tz="UTC")

    with duckdb_connection() as con:
        metadata = table.metadata_location
        got = con.execute(
            f"SELECT {', '.join(columns)} FROM iceberg_scan(?) ORDER BY event_id", [metadata]
        ).arrow()
    got_table = got.read_all() if isinstance(got, pa.RecordBatchReader) else got
    got_rows = got_table.to_pylist()
    assert [r["event_id"] for r in got_rows] == [r["event_id"] for r in want]
    for g, w in zip(got_rows, want, strict=True):
        assert g["event_ts"] == w["event_ts"]
        assert g["amount"] == w["amount"]
        assert g["properties"] == w["properties"]
        assert g["event_date"] == w["event_date"]


def test_a_file_spanning_partitions_is_refused(catalog: SqlCatalog, tmp_path: Path) -> None:
    table = catalog.create_table(
        "core.spanning", schema=raw_events_schema(PROMOTED), partition_spec=raw_events_partition_spec()
    )
    items = [
        {"event_id": "a", "event_type": "t", "timestamp": "2026-05-01T00:00:00Z"},
        {"event_id": "b", "event_type": "t", "timestamp": "2026-05-02T00:00:00Z"},
    ]
    records = ec.process_batch(ndjson(items), schema=SCHEMA).records
    records = records.append_column(
        "ingested_at", pa.array([dt.datetime(2026, 5, 3, tzinfo=dt.UTC)] * 2, pa.timestamp("us", tz="UTC"))
    )
    meta = ec.write_iceberg_parquet(records, str(tmp_path / "span.parquet"), table.schema().model_dump_json())
    with pytest.raises(ValueError, match="more than one value"):
        commit_data_files(table, [meta])
    assert commit_data_files(table, []) is None
