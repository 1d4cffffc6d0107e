"""Partition values come from the table's current spec: the core writer's files of an hour- (or month-, day-,
identity-) partitioned raw_events are found by filtered reads, through pyiceberg and through DuckDB's iceberg
extension (loaded offline from its wheel). Real SQL catalog, real Parquet files written by the Rust core."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import duckdb
import duckdb_extension_avro
import duckdb_extension_iceberg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from eventpipe_common import tables as table_defs
from eventpipe_consumer import iceberg
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import And, GreaterThanOrEqual, LessThan
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, HourTransform, IdentityTransform, MonthTransform, Transform

from tests.helpers.consumer_helpers import STREAM, raw_rows

BASE = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
TRANSFORMS: dict[str, Transform[object, object]] = {
    "hour": HourTransform(), "day": DayTransform(), "month": MonthTransform(), "identity": IdentityTransform()}


def _table(root: Path, transform: str) -> tuple[Catalog, Table]:
    root.mkdir(parents=True, exist_ok=True)
    catalog = iceberg.open_catalog("test", {"type": "sql", "uri": f"sqlite:///{root / 'catalog.db'}",
                                            "warehouse": (root / "warehouse").as_uri()})
    catalog.create_namespace_if_not_exists("shop")
    spec = PartitionSpec(PartitionField(source_id=3, field_id=1000, transform=TRANSFORMS[transform],
                                        name=f"event_ts_{transform}"))
    table = catalog.create_table("shop.raw_events", schema=table_defs.raw_events_schema(), partition_spec=spec,
                                 properties=iceberg.CONSUMER_TABLE_PROPERTIES)
    return catalog, table


def _rows(offsets_minutes: list[int]) -> pa.Table:
    rows = raw_rows("shardId-000000000000", list(range(1, len(offsets_minutes) + 1)))
    ts = [BASE + timedelta(minutes=m) for m in offsets_minutes]
    rows = rows.set_column(rows.schema.get_field_index("event_ts"), "event_ts",
                           pa.array(ts, pa.timestamp("us", tz="UTC")))
    rows = rows.set_column(rows.schema.get_field_index("event_date"), "event_date",
                           pa.array([t.date() for t in ts], pa.date32()))
    return rows.set_column(rows.schema.get_field_index("event_hour"), "event_hour",
                           pa.array([t.hour for t in ts], pa.int32()))


def _commit(table: Table, rows: pa.Table) -> None:
    iceberg.commit_pieces(table, [iceberg.Piece("shardId-000000000000", 1, rows.num_rows, rows)], stream=STREAM,
                          writer="core")
    table.refresh()


def _pyiceberg_ids(table: Table, start: datetime, end: datetime) -> list[str]:
    rows = table.scan(row_filter=And(GreaterThanOrEqual("event_ts", start.isoformat()),
                                     LessThan("event_ts", end.isoformat())), selected_fields=("event_id",)).to_arrow()
    return sorted(rows["event_id"].to_pylist())


def _extension(package: ModuleType, name: str) -> str:
    path = Path(package.__file__ or "").parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    assert path.is_file(), path
    return str(path)


def _duckdb_ids(table: Table, start: datetime, end: datetime) -> list[str]:
    connection = duckdb.connect()
    for package, name in ((duckdb_extension_avro, "avro"), (duckdb_extension_iceberg, "iceberg")):
        connection.execute(f"LOAD '{_extension(package, name)}'")
    location = table.metadata_location.replace("'", "''")
    rows = connection.execute(
        f"select event_id from iceberg_scan('{location}') where event_ts >= ? and event_ts < ? order by event_id",
        [start, end]).fetchall()
    return [str(row[0]) for row in rows]


def _expected(rows: pa.Table, start: datetime, end: datetime) -> list[str]:
    return sorted(i for i, t in zip(rows["event_id"].to_pylist(), rows["event_ts"].to_pylist(), strict=True)
                  if start <= t < end)


def test_an_hour_partitioned_table_reads_back_with_filters(tmp_path: Path) -> None:
    """The core writer into raw_events partitioned by hour(event_ts): one file per hour, each file's partition
    value the hour of its rows, and filtered reads of every hour find exactly its rows (pyiceberg and DuckDB)."""
    _, table = _table(tmp_path, "hour")
    offsets = [m for h in (0, 1, 5, 26) for m in (h * 60 + 3, h * 60 + 30, h * 60 + 59)]
    rows = _rows(offsets)
    _commit(table, rows)
    files = list(table.scan().plan_files())
    assert len(files) == 4
    for task in files:
        hours = {int((t - BASE).total_seconds() // 3600) for t in
                 pq.read_table(task.file.file_path.removeprefix("file://"))["event_ts"].to_pylist()}
        assert hours == {task.file.partition[0] - int(BASE.timestamp() // 3600)}
    for hour in (0, 1, 2, 5, 26):
        start = BASE + timedelta(hours=hour)
        end = start + timedelta(hours=1)
        expected = _expected(rows, start, end)
        assert len(expected) == (0 if hour == 2 else 3)
        assert _pyiceberg_ids(table, start, end) == expected
        assert _duckdb_ids(table, start, end) == expected


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_both_writers_stamp_the_same_partitions(tmp_path: Path, transform: str) -> None:
    """The core writer's partition records equal pyiceberg's own writer's for the same rows."""
    rows = _rows([0, 59, 61, 24 * 60 + 5, 40 * 24 * 60])
    records = {}
    for writer in ("core", "pyiceberg"):
        _, table = _table(tmp_path / writer, transform)
        files = iceberg.write_data_files(table, rows, writer)  # type: ignore[arg-type]
        records[writer] = sorted((tuple(f.partition), f.record_count) for f in files)
    assert records["core"] == records["pyiceberg"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transform=st.sampled_from(sorted(TRANSFORMS)),
       offsets=st.lists(st.integers(0, 90 * 24 * 60), min_size=1, max_size=30),
       window=st.tuples(st.integers(0, 90 * 24 * 60), st.integers(1, 10 * 24 * 60)))
def test_filtered_reads_find_every_row_whatever_the_spec(transform: str, offsets: list[int],
                                                         window: tuple[int, int]) -> None:
    """Property 36: Iceberg tables partitioned by date. Whatever time transform the table's spec uses and
    whatever event times a batch holds, a filtered pyiceberg scan of any time range returns exactly the rows in
    that range (partition pruning never drops a file the filter needs)."""
    with tempfile.TemporaryDirectory() as tmp:
        _, table = _table(Path(tmp), transform)
        rows = _rows(offsets)
        _commit(table, rows)
        start = BASE + timedelta(minutes=window[0])
        end = start + timedelta(minutes=window[1])
        assert _pyiceberg_ids(table, start, end) == _expected(rows, start, end)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transform=st.sampled_from(sorted(TRANSFORMS)),
       offsets=st.lists(st.integers(0, 400 * 24 * 60), min_size=1, max_size=200))
@example(transform="hour", offsets=[1020, 9240, 9300])  # pyarrow 26's group_by gave these hours out of order
def test_each_row_is_planned_into_its_partition(transform: str, offsets: list[int]) -> None:
    """partition_plan: each row's group names the partition record its event_ts gets from the spec's transform,
    and the records are distinct and sorted (a wrong group would stamp a file with another partition's value,
    and filtered reads would skip its rows)."""
    with tempfile.TemporaryDirectory() as tmp:
        _, table = _table(Path(tmp), transform)
        rows = _rows(offsets)
        partitions, groups = iceberg.partition_plan(rows, table)
        field = table.spec().fields[0]
        to_partition = field.transform.transform(table.schema().find_field(field.source_id).field_type)
        values = [record[0] for record in partitions]
        micros = [int(t.timestamp() * 1_000_000) for t in rows["event_ts"].to_pylist()]
        assert [values[group] for group in groups.to_pylist()] == [to_partition(m) for m in micros]
        assert values == sorted(set(values))
