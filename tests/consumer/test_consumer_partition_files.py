"""The core writer's data files of one commit, written by one `write_iceberg_parquet_groups` call
(`iceberg.write_data_files`), are the files the previous path wrote: rows sorted and taken per partition in
Python, one `write_iceberg_parquet` call per file (tests/helpers/consumer_reference.py). Same partitions in the
same order, byte-identical Parquet files, same manifest metrics. Real SQL catalog, real files; multi-chunk inputs
(a commit concatenates its pieces) and specs of one or two fields, nulls included."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import eventpipe_core
import pyarrow as pa
import pytest
from eventpipe_common import tables as table_defs
from eventpipe_consumer import iceberg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyiceberg.manifest import DataFile
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, HourTransform, IdentityTransform, MonthTransform, Transform

from tests.helpers.consumer_helpers import raw_rows
from tests.helpers.consumer_reference import write_data_files_per_partition

BASE = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
# Specs by name: (source field id, transform) per partition field. 3 = event_ts, 2 = event_type, 6 = user_id
# (optional: its identity partition has a null value).
SPECS: dict[str, list[tuple[int, Transform[object, object]]]] = {
    "none": [],
    "hour": [(3, HourTransform())],
    "day": [(3, DayTransform())],
    "month": [(3, MonthTransform())],
    "identity-user": [(6, IdentityTransform())],
    "day+type": [(3, DayTransform()), (2, IdentityTransform())],
    "user+hour": [(6, IdentityTransform()), (3, HourTransform())],
}


def _table(root: Path, spec_name: str) -> Table:
    root.mkdir(parents=True, exist_ok=True)
    catalog = iceberg.open_catalog("test", {"type": "sql", "uri": f"sqlite:///{root / 'catalog.db'}",
                                            "warehouse": (root / "warehouse").as_uri()})
    catalog.create_namespace_if_not_exists("shop")
    spec = PartitionSpec(*[PartitionField(source_id=source, field_id=1000 + n, transform=transform,
                                          name=f"p{n}_{source}")
                           for n, (source, transform) in enumerate(SPECS[spec_name])])
    return catalog.create_table("shop.raw_events", schema=table_defs.raw_events_schema(), partition_spec=spec,
                                properties=iceberg.CONSUMER_TABLE_PROPERTIES)


def _rows(events: list[tuple[int, int, int | None]], chunks: int) -> pa.Table:
    """raw_events rows: (minutes after BASE, event type, user or None) each, cut into up to `chunks` chunks."""
    rows = raw_rows("shardId-000000000000", list(range(1, len(events) + 1)))
    ts = [BASE + timedelta(minutes=m) for m, _, _ in events]
    columns = {
        "event_ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "event_date": pa.array([t.date() for t in ts], pa.date32()),
        "event_hour": pa.array([t.hour for t in ts], pa.int32()),
        "event_type": pa.array([f"type-{k}" for _, k, _ in events]),
        "user_id": pa.array([None if u is None else f"user-{u}" for _, _, u in events], pa.string()),
    }
    for name, column in columns.items():
        rows = rows.set_column(rows.schema.get_field_index(name), name, column)
    size = -(-rows.num_rows // chunks)
    return pa.concat_tables([rows.slice(start, size) for start in range(0, rows.num_rows, size)])


def _summary(files: list[DataFile]) -> list[tuple[object, ...]]:
    """What the manifest gets from each file, and the file's bytes (paths differ: each has its own uuid)."""
    return [(tuple(f.partition), f.record_count, f.file_size_in_bytes, f.column_sizes, f.value_counts,
             f.null_value_counts, f.lower_bounds, f.upper_bounds, f.split_offsets,
             Path(urlparse(f.file_path).path).read_bytes()) for f in files]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec_name=st.sampled_from(sorted(SPECS)),
       events=st.lists(st.tuples(st.integers(0, 90 * 24 * 60), st.integers(0, 3),
                                 st.none() | st.integers(0, 4)), min_size=1, max_size=300),
       chunks=st.integers(1, 5))
def test_one_call_writes_the_files_of_the_per_partition_path(
        spec_name: str, events: list[tuple[int, int, int | None]], chunks: int) -> None:
    """Property 36: Iceberg tables partitioned by date. One `write_iceberg_parquet_groups` call per commit writes,
    partition for partition and in the same order, the bytes and the manifest metrics the per-partition path
    (sort, take, one call per file) wrote: a row in the wrong file or a partition value on the wrong file would
    make filtered reads skip rows."""
    with tempfile.TemporaryDirectory() as tmp:
        table = _table(Path(tmp), spec_name)
        rows = _rows(events, chunks)
        new = iceberg.write_data_files(table, rows, "core")
        old = write_data_files_per_partition(table, rows)
        assert _summary(new) == _summary(old)
        assert sum(f.record_count for f in new) == rows.num_rows


def test_groups_that_do_not_fit_the_rows_are_refused(tmp_path: Path) -> None:
    """A group number per row, each below the number of paths, and a path for no rows at all is refused (the
    caller's plan is wrong): nothing is left behind."""
    rows = raw_rows("shardId-000000000000", [1, 2, 3])
    schema = table_defs.raw_events_schema().model_dump_json()
    paths = [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")]
    cases = {"group numbers": [0, 1], "no path": [0, 1, 2], "no rows": [0, 0, 0], "negative": [0, -1, 1]}
    for message, groups in cases.items():
        with pytest.raises(eventpipe_core.EventpipeError, match=message):
            eventpipe_core.write_iceberg_parquet_groups(rows, pa.table({"g": pa.array(groups, pa.int32())}), paths,
                                                        schema)
    assert list(tmp_path.iterdir()) == []
