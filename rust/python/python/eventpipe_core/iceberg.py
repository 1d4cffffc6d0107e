"""Commit data files written by `write_iceberg_parquet` into a pyiceberg table (a fast append, no rewrite).

pyiceberg is imported lazily: the core itself does not depend on it. Used by the consumer and the tests.

    meta = write_iceberg_parquet(records, path, table.schema().model_dump_json())
    snapshot_id = commit_data_files(table, [meta], snapshot_properties={"shard-0": "49590..."})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table
    from pyiceberg.typedef import Record

    from eventpipe_core._native import DataFileMeta


def partition_of(meta: DataFileMeta, table: Table) -> Any:
    """The partition record of a data file under the table's current spec, from its column bounds.

    Every partition transform that preserves order (identity, year, month, day, hour, truncate) maps the lower and
    the upper bound of the source column to the same value when the file holds one partition; a file spanning
    partitions raises ValueError (write one file per partition).
    """
    from pyiceberg.conversions import from_bytes
    from pyiceberg.typedef import Record
    from pyiceberg.types import PrimitiveType

    schema = table.schema()
    values: list[Any] = []
    for field in table.spec().fields:
        source = schema.find_field(field.source_id)
        if not field.transform.preserves_order:
            raise ValueError(f"partition field {field.name}: transform {field.transform} cannot be derived from bounds")
        if not isinstance(source.field_type, PrimitiveType):
            raise ValueError(f"partition field {field.name}: source column {source.name} is not a primitive")
        lower = meta.lower_bounds.get(field.source_id)
        upper = meta.upper_bounds.get(field.source_id)
        if lower is None or upper is None:
            values.append(None)
            continue
        transform = field.transform.transform(source.field_type)
        low = transform(from_bytes(source.field_type, lower))
        high = transform(from_bytes(source.field_type, upper))
        if low != high:
            raise ValueError(
                f"{meta.path}: holds more than one value of partition field {field.name} ({low!r} .. {high!r})"
            )
        values.append(low)
    return Record(*values)


def to_data_file(
    meta: DataFileMeta, table: Table, *, file_path: str | None = None, partition: Record | None = None
) -> DataFile:
    """A pyiceberg DataFile (content DATA, format PARQUET) for a file written by `write_iceberg_parquet`.

    `file_path` is where the file lives for the table when that is not where it was written (a local file
    uploaded to object storage); `partition` skips deriving the partition from the file's bounds.
    """
    from pyiceberg.manifest import DataFile, DataFileContent, FileFormat

    if file_path is None:
        file_path = meta.path if "://" in meta.path else f"file://{meta.path}"
    return DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=file_path,
        file_format=FileFormat.PARQUET,
        partition=partition if partition is not None else partition_of(meta, table),
        record_count=meta.record_count,
        file_size_in_bytes=meta.file_size_in_bytes,
        column_sizes=dict(meta.column_sizes),
        value_counts=dict(meta.value_counts),
        null_value_counts=dict(meta.null_value_counts),
        nan_value_counts={},
        lower_bounds=dict(meta.lower_bounds),
        upper_bounds=dict(meta.upper_bounds),
        split_offsets=list(meta.split_offsets),
        sort_order_id=None,
        spec_id=table.metadata.default_spec_id,
        equality_ids=None,
        key_metadata=None,
    )


def commit_data_files(
    table: Table,
    metas: Sequence[DataFileMeta],
    *,
    snapshot_properties: Mapping[str, str] | None = None,
) -> int | None:
    """Fast-append the files in one snapshot (with `snapshot_properties` in its summary); returns the new
    snapshot id (None when `metas` is empty: nothing is committed)."""
    if not metas:
        return None
    files = [to_data_file(m, table) for m in metas]
    with table.transaction() as tx:
        with tx.update_snapshot(snapshot_properties=dict(snapshot_properties or {})).fast_append() as append:
            for f in files:
                append.append_data_file(f)
    table.refresh()
    snapshot = table.current_snapshot()
    return snapshot.snapshot_id if snapshot is not None else None
