"""Iceberg side of the consumer: catalog and tables, data files, and the checkpointed commit.

Synchronous (pyiceberg is); the consumer calls it through asyncio.to_thread.

pyiceberg retries a CommitFailedException by itself, rebasing the staged snapshot on the new head without
asking the caller. That would write a checkpoint map computed before the concurrent commit, so the consumer's
tables set `commit.retry.num-retries=0` and `commit_segments` retries itself: refresh, re-read the map,
re-filter the rows, then commit again.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from eventpipe_common import tables as table_defs
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import CommitFailedException, NamespaceAlreadyExistsError, TableAlreadyExistsError
from pyiceberg.io.pyarrow import _dataframe_to_data_files, schema_to_pyarrow
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.typedef import Record

from eventpipe_consumer import checkpoints

NO_PYICEBERG_RETRIES = {"commit.retry.num-retries": "0"}
CONSUMER_TABLE_PROPERTIES = {**table_defs.TABLE_PROPERTIES, **NO_PYICEBERG_RETRIES}
MAX_CONFLICT_RETRIES = 20
EPOCH = dt.date(1970, 1, 1)

Writer = Literal["core", "pyiceberg"]


def open_catalog(name: str, properties: Mapping[str, str]) -> Catalog:
    return load_catalog(name, **dict(properties))


def ensure_tables(catalog: Catalog, namespace: str,
                  promoted: Sequence[tuple[str, str]] = ()) -> tuple[Table, Table]:
    """Create the namespace and both tables when missing; returns (raw_events, raw_events_rejected).

    Consumers starting together race on the creation: the loser sees "already exists" and tries again.
    """
    for attempt in range(5):
        try:
            return _ensure_tables(catalog, namespace, promoted)
        except (sa.exc.SQLAlchemyError, NamespaceAlreadyExistsError, TableAlreadyExistsError):
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _ensure_tables(catalog: Catalog, namespace: str, promoted: Sequence[tuple[str, str]]) -> tuple[Table, Table]:
    catalog.create_namespace_if_not_exists(namespace)
    raw = catalog.create_table_if_not_exists(
        f"{namespace}.{table_defs.RAW_EVENTS}", schema=table_defs.raw_events_schema(promoted),
        partition_spec=table_defs.raw_events_partition_spec(), properties=CONSUMER_TABLE_PROPERTIES)
    rejected = catalog.create_table_if_not_exists(
        f"{namespace}.{table_defs.RAW_EVENTS_REJECTED}", schema=table_defs.raw_events_rejected_schema(),
        partition_spec=table_defs.raw_events_rejected_partition_spec(), properties=CONSUMER_TABLE_PROPERTIES)
    return _without_pyiceberg_retries(raw), _without_pyiceberg_retries(rejected)


def _without_pyiceberg_retries(table: Table) -> Table:
    """Tables created by someone else (the operator) get the property on first use."""
    if all(table.properties.get(k) == v for k, v in NO_PYICEBERG_RETRIES.items()):
        return table
    for _ in range(MAX_CONFLICT_RETRIES):
        try:
            with table.transaction() as txn:
                txn.set_properties(NO_PYICEBERG_RETRIES)
            return table
        except CommitFailedException:
            table.refresh()
    raise CommitFailedException(f"could not set {NO_PYICEBERG_RETRIES} on {table.name()}")


# ---------------------------------------------------------------------------------------------- data files
def conform(rows: pa.Table, table: Table) -> pa.Table:
    """Columns in the table schema's order and types (nullability included), as both writers expect."""
    target = schema_to_pyarrow(table.schema(), include_field_ids=False)
    return rows.select(target.names).cast(target)


def _day(value: dt.date) -> int:
    return (value - EPOCH).days


def _partition_days(rows: pa.Table, date_column: str) -> pa.Array:
    column = rows[date_column]
    if pa.types.is_timestamp(column.type):
        column = pc.cast(column, pa.timestamp("us", tz="UTC"))
        column = pc.cast(pc.floor_temporal(column, unit="day"), pa.date32())
    return pc.cast(column, pa.int32())


def write_data_files(table: Table, rows: pa.Table, writer: Writer, date_column: str) -> list[DataFile]:
    """One Parquet file per day partition, written by the Rust core or by pyiceberg."""
    if rows.num_rows == 0:
        return []
    if writer == "pyiceberg":
        return list(_dataframe_to_data_files(table.metadata, conform(rows, table), table.io))
    rows = rows.select(table.schema().column_names)  # the core maps columns to field ids by name
    days = _partition_days(rows, date_column)
    order = pc.sort_indices(days)
    rows, days = rows.take(order), days.take(order)
    files = []
    offset = 0
    for item in pc.value_counts(days).to_pylist():  # in order of first appearance: sorted
        count = int(item["counts"])
        files.append(_write_core_file(table, rows.slice(offset, count), int(item["values"])))
        offset += count
    return files


def _write_core_file(table: Table, rows: pa.Table, day: int) -> DataFile:
    import eventpipe_core
    from eventpipe_core.iceberg import to_data_file

    spec = table.spec()
    schema = table.schema()
    partition = Record(day)
    name = f"{spec.partition_to_path(partition, schema)}/{uuid.uuid4()}.parquet"
    location = table.location_provider().new_data_location(name)
    local = _local_path(location)
    if local is not None:
        os.makedirs(os.path.dirname(local), exist_ok=True)
        meta = eventpipe_core.write_iceberg_parquet(rows, local, schema.model_dump_json(), "zstd")
    else:
        with tempfile.TemporaryDirectory(prefix="eventpipe-consumer-") as tmp:
            path = os.path.join(tmp, "part.parquet")
            meta = eventpipe_core.write_iceberg_parquet(rows, path, schema.model_dump_json(), "zstd")
            with open(path, "rb") as source, table.io.new_output(location).create(overwrite=True) as sink:
                shutil.copyfileobj(source, sink, 4 * 1024 * 1024)
    return to_data_file(meta, table, file_path=location, partition=partition)


def _local_path(location: str) -> str | None:
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return parsed.path
    if parsed.scheme == "":
        return location
    return None


def partition_groups(rows: pa.Table, date_column: str) -> list[list[int]]:
    """Row positions grouped by day partition, in order of first appearance; one group of all rows when the
    day cannot be computed (then the bisection finds out why)."""
    try:
        days = _partition_days(rows, date_column).to_pylist()
    except (pa.ArrowInvalid, OverflowError, ValueError):
        return [list(range(rows.num_rows))]
    groups: dict[object, list[int]] = {}
    for position, day in enumerate(days):
        groups.setdefault(day, []).append(position)
    return list(groups.values())


def probe_rows(table: Table, rows: pa.Table, writer: Writer, date_column: str) -> None:
    """Do all a commit of `rows` does except the catalog's commit: write the data files, then the manifests and
    the snapshot summary in a transaction that is never committed. Raises what the commit would raise for
    these rows' content. The data files are deleted; the manifests are orphans (maintenance deletes them)."""
    files = write_data_files(table, rows, writer, date_column)
    try:
        txn = table.transaction()
        with txn.update_snapshot().fast_append() as add:
            for data_file in files:
                add.append_data_file(data_file)
    finally:
        for data_file in files:
            table.io.delete(data_file.file_path)


# ---------------------------------------------------------------------------------------------- commit
@dataclass(slots=True)
class Piece:
    """Rows of one shard covering sequence numbers first..last (rows may be empty: the position still moves)."""

    shard_id: str
    first_sequence: int
    last_sequence: int
    rows: pa.Table | None


@dataclass(slots=True)
class CommitOutcome:
    """What one checkpointed commit did (also the content of the audit line)."""

    table: str
    snapshot_id: int | None
    data_files: list[str]
    record_count: int
    shard_ranges: dict[str, tuple[int, int]]  # shard -> (first, last) sequence committed by this commit
    previous_map: dict[str, int]  # the map the commit was based on
    checkpoint_map: dict[str, int]  # the full map the commit wrote
    rows: pa.Table | None = None  # the rows committed (for job counts)
    conflicts: int = 0
    written: list[DataFile] = field(default_factory=list)


def sequence_filter(rows: pa.Table, after: int) -> pa.Table:
    """Rows whose sequence_number is greater than `after` (the slow path; whole pieces are kept or dropped)."""
    mask = pa.array([checkpoints.sequence_int(s) > after for s in rows["sequence_number"].to_pylist()], pa.bool_())
    return rows.filter(mask)


def _kept(pieces: Sequence[Piece], current: Mapping[str, int]) -> list[Piece]:
    """Only what is above each shard's committed position (whole pieces kept or dropped, rarely split)."""
    kept = []
    for piece in pieces:
        committed = current.get(piece.shard_id, -1)
        if piece.last_sequence <= committed:
            continue
        rows = piece.rows
        if piece.first_sequence <= committed and rows is not None and rows.num_rows:
            rows = sequence_filter(rows, committed)
        kept.append(Piece(piece.shard_id, max(piece.first_sequence, committed + 1), piece.last_sequence, rows))
    return kept


def commit_pieces(table: Table, pieces: Sequence[Piece], *, stream: str, writer: Writer, date_column: str,
                  sleep: Callable[[float], None] = time.sleep,
                  before_commit: Callable[[], None] | None = None,
                  summary_for: Callable[[Mapping[str, tuple[int, int]]], dict[str, str]] | None = None,
                  ) -> CommitOutcome:
    """Write and commit the rows above the table's checkpoint map, and advance the map to the pieces' ends.

    Exactly once: the filter runs against the map of the very metadata the commit is based on; a concurrent
    commit makes the catalog refuse ours (CommitFailedException), and we start over from a refreshed table.
    `before_commit` runs between writing the files and committing them (where a concurrent writer would race).
    `summary_for(ranges)` adds snapshot summary properties computed from the ranges this commit adds (the
    consumer's per-job counts, so that they can be reconciled from the table after a crash).
    """
    written: list[DataFile] = []
    written_for: tuple[tuple[str, int, int], ...] | None = None
    for attempt in range(MAX_CONFLICT_RETRIES):
        table.refresh()
        current = checkpoints.read_map(table.metadata, stream)
        kept = _kept(pieces, current)
        ranges: dict[str, tuple[int, int]] = {}
        for piece in kept:
            first, last = ranges.get(piece.shard_id, (piece.first_sequence, piece.last_sequence))
            ranges[piece.shard_id] = (min(first, piece.first_sequence), max(last, piece.last_sequence))
        if not kept:
            return CommitOutcome(table.name()[-1], None, [], 0, {}, current, current, None, attempt)
        key = tuple((p.shard_id, p.first_sequence, p.last_sequence) for p in kept)
        row_tables = [p.rows for p in kept if p.rows is not None and p.rows.num_rows]
        rows = pa.concat_tables(row_tables, promote_options="default") if row_tables else None
        if written_for != key:
            written = write_data_files(table, rows, writer, date_column) if rows is not None else []
            written_for = key
        new_map = checkpoints.merge(current, {s: last for s, (_, last) in ranges.items()})
        if before_commit is not None:
            before_commit()
        try:
            properties = checkpoints.encode(stream, new_map)
            if summary_for is not None:
                properties |= summary_for(ranges)
            with table.transaction() as txn, txn.update_snapshot(snapshot_properties=properties).fast_append() as add:
                for data_file in written:
                    add.append_data_file(data_file)
        except CommitFailedException:
            sleep(min(0.05 * 2 ** attempt, 1.0))
            continue
        snapshot = table.metadata.current_snapshot()
        return CommitOutcome(
            table=table.name()[-1],
            snapshot_id=snapshot.snapshot_id if snapshot is not None else None,
            data_files=[f.file_path for f in written],
            record_count=sum(f.record_count for f in written),
            shard_ranges=ranges,
            previous_map=current,
            checkpoint_map=new_map,
            rows=rows,
            conflicts=attempt,
            written=written,
        )
    raise CommitFailedException(f"{table.name()}: {MAX_CONFLICT_RETRIES} concurrent commits in a row")
