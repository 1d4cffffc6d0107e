"""Iceberg side of the consumer: catalog and tables, data files, and the checkpointed commit.

Synchronous (pyiceberg is); the consumer calls it through asyncio.to_thread.

pyiceberg retries a CommitFailedException by itself, rebasing the staged snapshot on the new head without
asking the caller. That would write a checkpoint map computed before the concurrent commit, so the consumer's
tables set `commit.retry.num-retries=0` and `commit_segments` retries itself: refresh, re-read the map,
re-filter the rows, then commit again.
"""

from __future__ import annotations

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
from eventpipe_common.logging import get_logger
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import CommitFailedException, NamespaceAlreadyExistsError, TableAlreadyExistsError
from pyiceberg.io.pyarrow import _dataframe_to_data_files, schema_to_pyarrow
from pyiceberg.manifest import DataFile
from pyiceberg.partitioning import PartitionFieldValue, PartitionKey
from pyiceberg.table import Table, Transaction
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.update import TableUpdate
from pyiceberg.typedef import Record

from eventpipe_consumer import checkpoints

NO_PYICEBERG_RETRIES = {"commit.retry.num-retries": "0"}
CONSUMER_TABLE_PROPERTIES = {**table_defs.TABLE_PROPERTIES, **NO_PYICEBERG_RETRIES}
MAX_CONFLICT_RETRIES = 20
# How long the metadata this process last saw of a table (its own commit's, or a refresh) is taken as the base of
# the next commit without reading it again. A commit on metadata that is no longer the catalog's head is refused
# (CommitFailedException: the branch moved) and retried on a refreshed table, so this only bounds how late a change
# that does not move the branch (a schema, spec or property change by another tool) is seen.
METADATA_TRUSTED_SECONDS = 5.0

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
    for table in (raw, rejected):
        warm_up(table)
    return _without_pyiceberg_retries(raw), _without_pyiceberg_retries(rejected)


def warm_up(table: Table) -> None:
    """Load what a commit to `table` loads on first use (the core's Iceberg helpers; the partition transforms,
    which import pyiceberg-core), so that the first commit after a start is not the slow one."""
    import eventpipe_core.iceberg  # noqa: F401

    partition_plan(schema_to_pyarrow(table.schema(), include_field_ids=False).empty_table(), table)


def has_no_pyiceberg_retries(table: Table) -> bool:
    return all(table.properties.get(k) == v for k, v in NO_PYICEBERG_RETRIES.items())


def _without_pyiceberg_retries(table: Table) -> Table:
    """Make sure pyiceberg will not retry a commit by itself: checked at every start and before every commit
    (on the refreshed table), since the operator or any tool may create the table or change its properties.
    Set again when missing, then read back from the catalog."""
    if has_no_pyiceberg_retries(table):
        return table
    get_logger().warning("table_property_restored", table=".".join(table.name()), properties=NO_PYICEBERG_RETRIES,
                         found={k: table.properties.get(k) for k in NO_PYICEBERG_RETRIES})
    for _ in range(MAX_CONFLICT_RETRIES):
        try:
            with transaction(table) as txn:
                txn.set_properties(NO_PYICEBERG_RETRIES)
        except CommitFailedException:
            table.refresh()
            continue
        table.refresh()
        if has_no_pyiceberg_retries(table):
            return table
    raise CommitFailedException(f"could not set {NO_PYICEBERG_RETRIES} on {table.name()}")


class MetadataOnceTransaction(Transaction):
    """pyiceberg's Transaction with its staged metadata built once per set of staged updates.

    pyiceberg's `table_metadata` applies the staged updates to a deep copy of the whole table metadata on EVERY
    read, and one fast append reads it ~15 times: half of a consumer commit's CPU (docs/benchmarks.md, "commit
    cycle"). Here the copy is made once and kept until an update is staged or the table's metadata changes, and
    not at all while nothing is staged (the table's own metadata is read then: staging never changes it).
    """

    _built: tuple[TableMetadata, tuple[TableUpdate, ...], TableMetadata] | None = None

    @property
    def table_metadata(self) -> TableMetadata:
        if not self._updates:
            # Nothing staged: the table's own metadata, which pyiceberg's models never change in place (every
            # update builds new ones); the copy below grows with the table's snapshots.
            return self._table.metadata
        base, updates, built = self._built or (None, None, None)
        if built is None or base is not self._table.metadata or updates is not self._updates:
            built = super().table_metadata
            self._built = (self._table.metadata, self._updates, built)
        return built


def transaction(table: Table) -> Transaction:
    """A transaction on `table` that copies the table's metadata once, not on every read (see above)."""
    return MetadataOnceTransaction(table)


# ---------------------------------------------------------------------------------------------- data files
def conform(rows: pa.Table, table: Table) -> pa.Table:
    """Columns in the table schema's order and types (nullability included), as both writers expect."""
    target = schema_to_pyarrow(table.schema(), include_field_ids=False)
    return rows.select(target.names).cast(target)


def partition_plan(rows: pa.Table, table: Table) -> tuple[list[Record], pa.Array]:
    """The partitions of `rows` under the table's CURRENT spec and each row's partition, as an index into them.

    The partitions are sorted by value (nulls last), with the records pyiceberg's PartitionKey builds, as its
    own writer does; the rows are not moved here (the core's writer places each row in
    its partition's file in one pass). Per spec field, the transform's values are dictionary-encoded; several
    fields combine their codes into one number per row, encoded again.
    """
    spec, schema = table.spec(), table.schema()
    if not spec.fields:
        return [Record()], pa.repeat(pa.scalar(0, pa.int32()), rows.num_rows)
    dictionaries: list[pa.Array] = []
    code: pa.Array | None = None
    indices: pa.Array | None = None
    for spec_field in spec.fields:
        values = spec_field.transform.pyarrow_transform(schema.find_field(spec_field.source_id).field_type)(
            rows[schema.find_column_name(spec_field.source_id) or ""])
        if isinstance(values, pa.ChunkedArray):
            values = pa.concat_arrays(values.chunks) if values.num_chunks != 1 else values.chunk(0)
        encoded = pc.dictionary_encode(values, null_encoding="encode")
        dictionaries.append(encoded.dictionary)
        indices = encoded.indices
        wide = indices.cast(pa.int64())
        code = wide if code is None else pc.add(pc.multiply(code, len(encoded.dictionary)), wide)
    assert code is not None and indices is not None
    if len(dictionaries) == 1:
        codes, groups = pa.array(range(len(dictionaries[0])), pa.int64()), indices
    else:
        combined = pc.dictionary_encode(code)
        codes, groups = combined.dictionary, combined.indices
    names = [f"_p{n}" for n in range(len(spec.fields))]
    positions: list[list[int]] = [[] for _ in names]  # per field, each group's position in its dictionary
    for value in codes.to_pylist():
        digits = []
        for dictionary in reversed(dictionaries):
            value, digit = divmod(value, len(dictionary))
            digits.append(digit)
        for field_positions, digit in zip(positions, reversed(digits), strict=True):
            field_positions.append(digit)
    keys = pa.table({name: dictionary.take(pa.array(field_positions, pa.int64()))
                     for name, dictionary, field_positions in zip(names, dictionaries, positions, strict=True)})
    order = pc.sort_indices(keys, sort_keys=[(name, "ascending") for name in names]).to_pylist()
    rank = [0] * len(order)
    for position, group in enumerate(order):
        rank[group] = position
    partitions = []
    for run in keys.take(pa.array(order, pa.int64())).to_pylist():
        partitions.append(PartitionKey(
            field_values=[PartitionFieldValue(field=spec_field, value=run[name])
                          for spec_field, name in zip(spec.fields, names, strict=True)],
            partition_spec=spec, schema=schema).partition)
    return partitions, pc.take(pa.array(rank, pa.int32()), groups)


def write_data_files(table: Table, rows: pa.Table, writer: Writer) -> list[DataFile]:
    """One Parquet file per partition of the table's current spec, written by the Rust core or by pyiceberg.

    The core writes every partition's file in one call (`write_iceberg_parquet_groups`): no sort and no take of
    the rows in Python (docs/benchmarks.md, Consumer, session 8)."""
    if rows.num_rows == 0:
        return []
    if writer == "pyiceberg":
        return list(_dataframe_to_data_files(table.metadata, conform(rows, table), table.io))
    import eventpipe_core
    from eventpipe_core.iceberg import to_data_file

    rows = rows.select(table.schema().column_names)  # the core maps columns to field ids by name
    partitions, groups = partition_plan(rows, table)
    spec, schema = table.spec(), table.schema()
    provider = table.location_provider()
    locations = [provider.new_data_location(f"{spec.partition_to_path(partition, schema)}/{uuid.uuid4()}.parquet")
                 for partition in partitions]
    local = [_local_path(location) for location in locations]
    group_table = pa.table({"group": groups})
    if all(path is not None for path in local):
        paths = [path for path in local if path is not None]
        for directory in {os.path.dirname(path) for path in paths}:
            os.makedirs(directory, exist_ok=True)
        metas = eventpipe_core.write_iceberg_parquet_groups(rows, group_table, paths, schema.model_dump_json(), "zstd")
    else:
        with tempfile.TemporaryDirectory(prefix="eventpipe-consumer-") as tmp:
            paths = [os.path.join(tmp, f"part-{n}.parquet") for n in range(len(locations))]
            metas = eventpipe_core.write_iceberg_parquet_groups(
                rows, group_table, paths, schema.model_dump_json(), "zstd")
            for path, location in zip(paths, locations, strict=True):
                with open(path, "rb") as source, table.io.new_output(location).create(overwrite=True) as sink:
                    shutil.copyfileobj(source, sink, 4 * 1024 * 1024)
    return [to_data_file(meta, table, file_path=location, partition=partition)
            for meta, location, partition in zip(metas, locations, partitions, strict=True)]


def _local_path(location: str) -> str | None:
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return parsed.path
    if parsed.scheme == "":
        return location
    return None


def partition_positions(rows: pa.Table, table: Table) -> list[list[int]]:
    """Row positions grouped by the table's current partition spec, in order of first appearance; one group of
    all rows when a partition value cannot be computed (then the bisection finds out why). The poison path only."""
    spec, schema = table.spec(), table.schema()
    try:
        keys = [field.transform.pyarrow_transform(schema.find_field(field.source_id).field_type)(
            rows[schema.find_column_name(field.source_id) or ""]).to_pylist() for field in spec.fields]
    except (pa.ArrowException, OverflowError, ValueError, KeyError, TypeError):
        return [list(range(rows.num_rows))]
    if not keys:
        return [list(range(rows.num_rows))]
    groups: dict[tuple[object, ...], list[int]] = {}
    for position, key in enumerate(zip(*keys, strict=True)):
        groups.setdefault(key, []).append(position)
    return list(groups.values())


def probe_rows(table: Table, rows: pa.Table, writer: Writer) -> None:
    """Do all a commit of `rows` does except the catalog's commit: write the data files, then the manifests and
    the snapshot summary in a transaction that is never committed. Raises what the commit would raise for
    these rows' content. The data files are deleted; the manifests are orphans (maintenance deletes them)."""
    files = write_data_files(table, rows, writer)
    try:
        txn = transaction(table)
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


# table name -> (metadata location, time.monotonic()) when this process last knew it was the catalog's head.
_known_head: dict[tuple[str, ...], tuple[str, float]] = {}


def _head_is_known(table: Table) -> bool:
    """True while `table`'s metadata is what this process committed or read within METADATA_TRUSTED_SECONDS
    (another handle of the same table committing in this process makes it False: the location differs)."""
    location, seen = _known_head.get(table.name(), ("", float("-inf")))
    return location == table.metadata_location and time.monotonic() - seen < METADATA_TRUSTED_SECONDS


def _remember_head(table: Table) -> None:
    _known_head[table.name()] = (table.metadata_location, time.monotonic())


def commit_pieces(table: Table, pieces: Sequence[Piece], *, stream: str, writer: Writer,
                  sleep: Callable[[float], None] = time.sleep,
                  before_commit: Callable[[], None] | None = None,
                  summary_for: Callable[[Mapping[str, tuple[int, int]]], dict[str, str]] | None = None,
                  ) -> CommitOutcome:
    """Write and commit the rows above the table's checkpoint map, and advance the map to the pieces' ends.

    Exactly once: the filter runs against the map of the very metadata the commit is based on; a concurrent
    commit makes the catalog refuse ours (CommitFailedException), and we start over from a refreshed table. The
    first attempt skips the refresh while this process committed or read the table's head within
    METADATA_TRUSTED_SECONDS (re-reading it on every commit shows in the consumer benchmark: docs/benchmarks.md).
    `before_commit` runs between writing the files and committing them (where a concurrent writer would race).
    `summary_for(ranges)` adds snapshot summary properties computed from the ranges this commit adds (the
    consumer's per-job counts, so that they can be reconciled from the table after a crash).
    """
    written: list[DataFile] = []
    written_for: tuple[tuple[str, int, int], ...] | None = None
    for attempt in range(MAX_CONFLICT_RETRIES):
        if attempt or not _head_is_known(table):
            table.refresh()
            _remember_head(table)
        _without_pyiceberg_retries(table)
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
            written = write_data_files(table, rows, writer) if rows is not None else []
            written_for = key
        new_map = checkpoints.merge(current, {s: last for s, (_, last) in ranges.items()})
        if before_commit is not None:
            before_commit()
        try:
            properties = checkpoints.encode(stream, new_map)
            if summary_for is not None:
                properties |= summary_for(ranges)
            with transaction(table) as txn, txn.update_snapshot(snapshot_properties=properties).fast_append() as add:
                for data_file in written:
                    add.append_data_file(data_file)
        except CommitFailedException:
            sleep(min(0.05 * 2 ** attempt, 1.0))
            continue
        _remember_head(table)
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
