"""Table maintenance pyiceberg lacks: compaction, snapshot expiry that keeps the checkpoint, orphan cleanup.

Safe beside live consumers:
- compaction rewrites only partitions that no commit touched for `quiet_seconds`, in one overwrite snapshot
  (same rows, fewer files); its snapshots carry no checkpoint map, the consumer reads the newest one that does;
  with `min_age_seconds` it also rewrites the files of partitions still being written, once they were committed
  that long ago (committed files never change and the consumer only appends, so this is safe; a pipeline that
  writes one partition all day needs it, or its file count grows with every commit until midnight);
- compaction writes its files once, then commits them on the newest table: a concurrent append (the consumer
  commits every few seconds, more often than a rewrite takes) only retries the commit, not the rewrite, and
  whether the replaced files are still live is read from the new snapshots' operations (appends only), not
  from the manifests;
- expiry never removes the snapshots from the current one back to the one holding the newest checkpoint map of
  any stream found in the table (the consumer walks that chain);
- orphan cleanup only deletes files older than a grace period (a consumer may be writing files it has not
  committed yet);
- every commit is retried on a refreshed table after a CommitFailedException.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlparse

import pyarrow as pa
from eventpipe_common.logging import get_logger
from pyarrow import fs as pafs
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, PyArrowFileIO
from pyiceberg.manifest import DataFile
from pyiceberg.table import FileScanTask, Table
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Operation, ancestors_of

from eventpipe_consumer import checkpoints, iceberg
from eventpipe_consumer.settings import ConsumerSettings

T = TypeVar("T")
MAX_ATTEMPTS = 10
MAX_COMMIT_ATTEMPTS = 50  # a compaction's commit against a consumer committing every second or faster


@dataclass
class MaintenanceReport:
    table: str
    compacted_partitions: int = 0
    files_removed: int = 0
    files_added: int = 0
    snapshots_expired: int = 0
    orphans_deleted: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _retry_on_conflict(table: Table, action: Callable[[], T]) -> T:
    for attempt in range(MAX_ATTEMPTS):
        table.refresh()
        try:
            return action()
        except CommitFailedException:
            time.sleep(min(0.1 * 2 ** attempt, 2.0))
    raise CommitFailedException(f"{table.name()}: gave up after {MAX_ATTEMPTS} concurrent commits")


# ---------------------------------------------------------------------------------------------- compaction
def added_ms_by_path(table: Table) -> dict[str, int]:
    """When each live data file was committed (0 when its snapshot is gone: old)."""
    times = {s.snapshot_id: s.timestamp_ms for s in table.metadata.snapshots}
    snapshot = table.current_snapshot()
    added: dict[str, int] = {}
    if snapshot is None:
        return added
    for manifest in snapshot.manifests(table.io):
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            added[entry.data_file.file_path] = times.get(entry.snapshot_id or 0, 0)
    return added


def compaction_groups(tasks: Sequence[FileScanTask], added_ms: dict[str, int], now_ms: int,
                      quiet_ms: int, target_bytes: int, min_files: int,
                      min_age_ms: int | None = None) -> list[list[FileScanTask]]:
    """Groups of small files of quiet partitions, each group rewritten into files near the target size.

    With `min_age_ms`, a partition that is not quiet still gives its small files committed at least that long
    ago (a file whose commit time is unknown counts as new)."""
    last_write_ms: dict[Any, int] = {}
    for task in tasks:
        key = task.file.partition
        last_write_ms[key] = max(last_write_ms.get(key, 0), added_ms.get(task.file.file_path, now_ms))
    by_partition: dict[Any, list[FileScanTask]] = {}
    for task in tasks:
        if task.file.file_size_in_bytes >= target_bytes * 0.75 or task.delete_files:
            continue
        quiet = now_ms - last_write_ms.get(task.file.partition, now_ms) >= quiet_ms
        old = min_age_ms is not None and now_ms - added_ms.get(task.file.file_path, now_ms) >= min_age_ms
        if quiet or old:
            by_partition.setdefault(task.file.partition, []).append(task)
    groups = []
    for small in by_partition.values():
        if len(small) < min_files:
            continue
        small.sort(key=lambda t: t.file.file_path)
        group: list[FileScanTask] = []
        size = 0
        for task in small:
            if group and size + task.file.file_size_in_bytes > target_bytes:
                if len(group) >= min_files:
                    groups.append(group)
                group, size = [], 0
            group.append(task)
            size += task.file.file_size_in_bytes
        if len(group) >= min_files:
            groups.append(group)
    return groups


def only_appends_since(metadata: TableMetadata, known: set[int]) -> bool:
    """Whether every snapshot not in `known` only added files (the consumer's appends): then every file live in
    the known state is still live. Read from the metadata alone, so a commit retry costs no manifest read."""
    for snapshot in metadata.snapshots:
        if snapshot.snapshot_id in known:
            continue
        if snapshot.summary is None or snapshot.summary.operation != Operation.APPEND:
            return False
    return True


def compact(table: Table, *, target_bytes: int, min_files: int, quiet_seconds: float,
            writer: iceberg.Writer, min_age_seconds: float | None = None,
            before_commit: Callable[[], None] | None = None) -> tuple[int, int, int]:
    """Rewrite small files of quiet (or, with `min_age_seconds`, old enough) files; returns (partitions, files
    removed, files added).

    The new files are written once; a commit refused because another writer committed first is retried on the
    refreshed table with the same files while every file they replace is still live (the consumer only appends).
    Only when another compaction replaced one of them is the rewrite planned again (our files become orphans).
    `before_commit` runs between writing the files and each commit attempt (where a concurrent writer races).
    """
    for _plan in range(MAX_ATTEMPTS):
        table.refresh()
        tasks = list(table.scan().plan_files())
        groups = compaction_groups(
            tasks, added_ms_by_path(table), int(time.time() * 1000), int(quiet_seconds * 1000), target_bytes,
            min_files, None if min_age_seconds is None else int(min_age_seconds * 1000))
        if not groups:
            return 0, 0, 0
        removed: list[DataFile] = []
        added: list[DataFile] = []
        for group in groups:
            rows = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue()).to_table(group)
            expected = sum(task.file.record_count for task in group)
            if rows.num_rows != expected:
                raise RuntimeError(f"compaction read {rows.num_rows} rows from files holding {expected}")
            added.extend(iceberg.write_data_files(table, rows, writer))
            removed.extend(task.file for task in group)
        planned_on = {snapshot.snapshot_id for snapshot in table.metadata.snapshots}
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            if attempt:
                table.refresh()
                if not only_appends_since(table.metadata, planned_on):
                    break  # another writer may have removed some of them: plan again
            if before_commit is not None:
                before_commit()
            try:
                with table.transaction() as txn, txn.update_snapshot(
                        snapshot_properties={"eventpipe.maintenance": "compaction"}).overwrite() as overwrite:
                    for data_file in removed:
                        overwrite.delete_data_file(data_file)
                    for data_file in added:
                        overwrite.append_data_file(data_file)
            except CommitFailedException:
                time.sleep(0.02 * (1 + attempt % 5))  # short: the next writer's commit is never far away
                continue
            return len(groups), len(removed), len(added)
    raise CommitFailedException(f"{table.name()}: compaction gave up after {MAX_ATTEMPTS} concurrent commits")


# ---------------------------------------------------------------------------------------------- expiry
def protected_snapshots(metadata: TableMetadata) -> set[int]:
    """Snapshots expiry must keep: the chain from the current snapshot back to the newest checkpoint map of EVERY
    stream that has one in the table (a consumer walks that chain; one expired link and its map is unreachable,
    and the consumer would start from the stream's horizon), plus every branch or tag head.

    Every stream counts, not only the one maintenance is configured for: a mistyped stream name or a second
    pipeline writing the table must never make another stream's checkpoint expire.
    """
    pending = checkpoints.streams_with_maps(metadata)
    protected = {ref.snapshot_id for ref in metadata.refs.values()}
    for snapshot in ancestors_of(metadata.current_snapshot(), metadata):
        protected.add(snapshot.snapshot_id)
        if snapshot.summary is not None:
            pending.discard(checkpoints.map_stream(snapshot.summary) or "")
        if not pending:
            break
    return protected


def expirable_snapshots(table: Table, older_than_ms: int) -> list[int]:
    """Snapshots older than the cutoff, minus the protected ones."""
    metadata = table.metadata
    protected = protected_snapshots(metadata)
    return [s.snapshot_id for s in metadata.snapshots
            if s.timestamp_ms < older_than_ms and s.snapshot_id not in protected]


def expire(table: Table, retention_seconds: float) -> int:
    def once() -> int:
        ids = expirable_snapshots(table, int((time.time() - retention_seconds) * 1000))
        if ids:
            table.maintenance.expire_snapshots().by_ids(ids).commit()
        return len(ids)

    return _retry_on_conflict(table, once)


# ---------------------------------------------------------------------------------------------- orphans
def _strip(location: str) -> str:
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return parsed.path
    return f"{parsed.netloc}{parsed.path}"


def referenced_files(table: Table) -> set[str]:
    """Every file a snapshot or a metadata version of the table points at (scheme stripped)."""
    metadata = table.metadata
    refs = {_strip(table.metadata_location)}
    refs |= {_strip(entry.metadata_file) for entry in metadata.metadata_log}
    for snapshot in metadata.snapshots:
        refs.add(_strip(snapshot.manifest_list))
        for manifest in snapshot.manifests(table.io):
            refs.add(_strip(manifest.manifest_path))
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                refs.add(_strip(entry.data_file.file_path))
    for stats in metadata.statistics:
        refs.add(_strip(stats.statistics_path))
    return refs


def _filesystem(table: Table) -> tuple[pafs.FileSystem, str]:
    io = table.io
    if not isinstance(io, PyArrowFileIO):
        raise TypeError(f"orphan cleanup needs pyiceberg's PyArrowFileIO, the table uses {type(io).__name__}")
    scheme, netloc, path = PyArrowFileIO.parse_location(table.location(), io.properties)
    return io.fs_by_scheme(scheme, netloc), path


def delete_orphans(table: Table, grace_seconds: float) -> list[str]:
    """Delete files under the table location that nothing references and that are older than the grace."""
    filesystem, root = _filesystem(table)
    table.refresh()
    refs = referenced_files(table)
    cutoff = datetime.fromtimestamp(time.time() - grace_seconds, tz=UTC)
    deleted = []
    for info in filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True)):
        if info.type != pafs.FileType.File or info.path in refs:
            continue
        mtime = info.mtime
        if mtime is not None and mtime.replace(tzinfo=mtime.tzinfo or UTC) > cutoff:
            continue
        filesystem.delete_file(info.path)
        deleted.append(info.path)
    return sorted(deleted)


# ---------------------------------------------------------------------------------------------- command
def run_maintenance(settings: ConsumerSettings, tables: Sequence[str], skip: set[str],
                    quiet_seconds: float = 3600.0, min_age_seconds: float | None = None) -> list[MaintenanceReport]:
    log = get_logger()
    catalog = iceberg.open_catalog(settings.catalog_name, settings.resolved_catalog_properties())
    reports = []
    for name in tables:
        table = catalog.load_table(f"{settings.namespace}.{name}")
        report = MaintenanceReport(name)
        if "compact" not in skip:
            report.compacted_partitions, report.files_removed, report.files_added = compact(
                table, target_bytes=settings.maintenance_target_file_bytes,
                min_files=settings.maintenance_min_files_to_compact, quiet_seconds=quiet_seconds,
                min_age_seconds=min_age_seconds, writer="pyiceberg")  # rows come from pyiceberg's reader
        if "expire" not in skip:
            report.snapshots_expired = expire(table, settings.maintenance_snapshot_retention_seconds)
        if "orphans" not in skip:
            report.orphans_deleted = delete_orphans(table, settings.maintenance_orphan_grace_seconds)
        log.info("maintenance", **report.to_dict())
        reports.append(report)
    return reports


def table_rows(table: Table) -> pa.Table:
    """The whole table, sorted, for before/after comparisons."""
    rows = table.scan().to_arrow()
    return rows.sort_by([(c, "ascending") for c in rows.column_names if c in ("event_id", "raw", "sequence_number")])
