"""Iceberg Parquet files: round trip, field ids, metrics, compression (Properties 7 and 47)."""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path
from typing import Any

import eventpipe_core as ec
import pyarrow as pa
import pyarrow.parquet as pq
from eventpipe_common.tables import raw_events_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.core_strategies import events, ndjson

PROMOTED = [("amount", "double"), ("currency", "string")]
SCHEMA = ec.Schema(
    {
        "promote": [
            {"path": "properties.amount", "column": "amount", "type": "double"},
            {"path": "properties.currency", "column": "currency", "type": "string"},
        ]
    }
)
ICEBERG = raw_events_schema(PROMOTED)
ICEBERG_JSON = ICEBERG.model_dump_json()
INGESTED_AT = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


@st.composite
def shop_events(draw: st.DrawFn) -> dict[str, Any]:
    e = draw(events(with_properties=False))
    props: dict[str, Any] = {}
    if draw(st.booleans()):
        props["amount"] = draw(st.floats(-1e9, 1e9))
    if draw(st.booleans()):
        props["currency"] = draw(st.text(max_size=20))
    if props:
        e["properties"] = props
    return e


def with_ingested_at(records: pa.Table) -> pa.Table:
    column = pa.array([INGESTED_AT] * records.num_rows, pa.timestamp("us", tz="UTC"))
    return records.append_column("ingested_at", column)


def decode(type_name: str, raw: bytes) -> Any:
    fmt = {"int": "<i", "long": "<q", "double": "<d", "date": "<i", "timestamptz": "<q"}.get(type_name)
    return struct.unpack(fmt, raw)[0] if fmt else raw.decode()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(shop_events(), min_size=1, max_size=12, unique_by=lambda e: e["event_id"]))
def test_parquet_round_trip(tmp_path: Path, items: list[dict[str, Any]]) -> None:
    """Property 7: Iceberg Parquet round-trip preserves data: records written with write_iceberg_parquet read back
    equal (every Iceberg column, field ids in the schema), and the returned metrics match the data: record count,
    value and null counts, and lower/upper bounds (strings truncated to 16 characters)."""
    records = with_ingested_at(ec.process_batch(ndjson(items), schema=SCHEMA).records)
    path = tmp_path / f"{len(items)}-{abs(hash(items[0]['event_id']))}.parquet"
    meta = ec.write_iceberg_parquet(records, str(path), ICEBERG_JSON)
    back = ec.read_iceberg_parquet(str(path))
    assert back.num_rows == meta.record_count == len(items)
    for field in ICEBERG.fields:
        arrow_field = back.schema.field(field.name)
        assert arrow_field.metadata[b"PARQUET:field_id"] == str(field.field_id).encode()
        assert arrow_field.nullable == (not field.required)
        want = records.column(field.name).to_pylist() if field.name in records.column_names else [None] * len(items)
        got = back.column(field.name).to_pylist()
        assert got == want, field.name
        values = [v for v in want if v is not None and v == v]
        assert meta.value_counts[field.field_id] == len(items)
        assert meta.null_value_counts[field.field_id] == sum(v is None for v in want)
        if not values:
            assert field.field_id not in meta.lower_bounds
            continue
        type_name = str(field.field_type)
        lower = decode(type_name, meta.lower_bounds[field.field_id])
        upper = decode(type_name, meta.upper_bounds[field.field_id])
        if type_name == "string":
            lo, hi = min(v.encode() for v in values), max(v.encode() for v in values)
            assert lower.encode() == lo.decode()[:16].encode()
            assert upper.encode() >= hi[: len(upper.encode())]
        elif type_name == "timestamptz":
            epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
            assert lower == min((v - epoch) // dt.timedelta(microseconds=1) for v in values)
            assert upper == max((v - epoch) // dt.timedelta(microseconds=1) for v in values)
        elif type_name == "date":
            assert lower == (min(values) - dt.date(1970, 1, 1)).days
        else:
            assert (lower, upper) == (min(values), max(values))
    assert meta.file_size_in_bytes == path.stat().st_size
    assert set(meta.column_sizes) == {f.field_id for f in ICEBERG.fields}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(shop_events(), min_size=1, max_size=20, unique_by=lambda e: e["event_id"]),
       st.sampled_from(["zstd", "snappy"]))
def test_parquet_compression(tmp_path: Path, items: list[dict[str, Any]], codec: str) -> None:
    """Property 47: Iceberg Parquet files use compression: every column chunk of a file written with
    compression "zstd" or "snappy" is compressed with that codec, and the file is a valid Parquet file."""
    records = with_ingested_at(ec.process_batch(ndjson(items), schema=SCHEMA).records)
    path = tmp_path / f"c-{codec}-{len(items)}.parquet"
    ec.write_iceberg_parquet(records, str(path), ICEBERG_JSON, compression=codec)  # type: ignore[arg-type]
    md = pq.ParquetFile(path).metadata
    for rg in range(md.num_row_groups):
        for col in range(md.num_columns):
            assert md.row_group(rg).column(col).compression == codec.upper()
    assert pq.read_table(path).num_rows == len(items)


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    records = ec.process_batch(ndjson([{"event_id": "a", "event_type": "t", "timestamp": "2026-01-01T00:00:00Z"}]))
    path = tmp_path / "x.parquet"
    try:
        ec.write_iceberg_parquet(records, str(path), ICEBERG_JSON)
    except ec.EventpipeError as err:
        assert "ingested_at" in str(err)
    else:
        raise AssertionError("ingested_at is required by raw_events")
    assert not path.exists()


def test_pyarrow_tables_are_accepted(tmp_path: Path) -> None:
    table = pa.table({"event_id": ["x"], "n": pa.array([1], pa.int64())})
    schema = '{"type": "struct", "fields": [{"id": 1, "name": "event_id", "required": true, "type": "string"},' \
             ' {"id": 2, "name": "n", "required": false, "type": "int"}]}'
    meta = ec.write_iceberg_parquet(table, str(tmp_path / "t.parquet"), schema)
    assert meta.record_count == 1
    back = ec.read_iceberg_parquet(str(tmp_path / "t.parquet"))
    assert back.schema.field("n").type == pa.int32()
    assert back.column("n").to_pylist() == [1]
