"""Table maintenance pyiceberg lacks: compaction, snapshot expiry that keeps the checkpoint, orphan cleanup.

Safe beside live consumers:
- compaction rewrites only partitions that no commit touched for `quiet_seconds`, in one overwrite snapshot
  (same rows, fewer files); its snapshots carry no checkpoint map, the consumer reads the newest one that does;
  with `min_age_seconds` it also rewrites the files of partitions still being written, once they were committed
  that long ago (committed files never change and the consumer only appends, so this is safe; a pipeline that
  writes one partition all day needs it, or its file count grows with every commit until midnight);
- compaction merges files by size tier (plan_compaction): in a partition still written, a file is merged only
  with files within `tier_ratio` of its size, so the growing compacted file is not rewritten on every pass, and a
  pass rewrites at most `max_pass_bytes`; the files are written by the Rust core's Parquet writer (the
  consumer's: Iceberg field ids and metrics as its own files), each group committed on its own;
- compaction writes its files once, then commits them on the newest table: a concurrent append (the consumer
  commits every few seconds, more often than a rewrite takes) only retries the commit, not the rewrite, and
  whether the replaced files are still live is read from the new snapshots' operations (appends only), not
  from the manifests;
- expiry never removes the snapshots from the current one back to the one holding the newest checkpoint map of
  any stream found in the table (the consumer walks that chain);
- orphan cleanup only deletes files older than a grace period (a consumer may be writing files it has not
  committed yet); compaction deletes the files it could not commit within half the grace itself, so expiry and
  orphan removal may run in a loop of their own beside a slow compaction (`--skip compact` / `--skip expire
  --skip orphans`);
- every commit is retried on a refreshed table after a CommitFailedException.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field, replace
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
    compaction_seconds: dict[str, float] = field(default_factory=dict)  # where a compaction's time went

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


@dataclass(frozen=True, slots=True)
class LiveFile:
    """What compaction planning needs to know of one live data file."""

    path: str
    partition: Hashable
    size: int
    added_ms: int | None  # when its commit happened; None when unknown (counted as new)
    has_deletes: bool = False


@dataclass(frozen=True, slots=True)
class CompactionPolicy:
    """Which files compaction merges.

    Size tiers: in a partition still being written, a group's largest file is at most `tier_ratio` times its
    smallest, so the big compacted file is merged only once files of its size exist, not rewritten every pass
    (each byte is rewritten about log_ratio(target / commit size) times in all). Files of at least
    `done_fraction` of the target are left alone. A quiet partition gets one final merge of its small files
    (no tier rule: it is written no more). One pass rewrites at most `max_pass_bytes`, cheapest groups first."""

    target_bytes: int
    quiet_ms: int
    min_files: int = 2
    min_age_ms: int | None = None
    tier_ratio: float = 4.0
    done_fraction: float = 0.5
    max_pass_bytes: int | None = None


def _groups_of(files: list[LiveFile], policy: CompactionPolicy, ratio: float) -> list[list[LiveFile]]:
    """Runs of the files sorted by size: each starts at its smallest file and takes the next ones while they are
    within `ratio` of it and the group stays within the target; a run too short to merge drops its first file."""
    files = sorted(files, key=lambda f: (f.size, f.path))
    groups = []
    i = 0
    while i < len(files):
        first = files[i]
        group, total = [first], first.size
        j = i + 1
        while (j < len(files) and files[j].size <= ratio * first.size
               and total + files[j].size <= policy.target_bytes):
            group.append(files[j])
            total += files[j].size
            j += 1
        if len(group) >= policy.min_files:
            groups.append(group)
            i = j
        else:
            i += 1
    return groups


def plan_compaction(files: Sequence[LiveFile], policy: CompactionPolicy, now_ms: int) -> list[list[LiveFile]]:
    """Groups of files to merge, each into one file per partition: small files of quiet partitions (or, with
    `min_age_ms`, files committed at least that long ago), by size tier in partitions still written."""
    last_write_ms: dict[Hashable, int] = {}
    for f in files:
        last_write_ms[f.partition] = max(last_write_ms.get(f.partition, 0),
                                         now_ms if f.added_ms is None else f.added_ms)
    candidates: dict[Hashable, list[LiveFile]] = {}
    quiet: dict[Hashable, bool] = {}
    for f in files:
        if f.has_deletes or f.size >= policy.target_bytes * policy.done_fraction:
            continue
        quiet[f.partition] = now_ms - last_write_ms[f.partition] >= policy.quiet_ms
        old = (policy.min_age_ms is not None and f.added_ms is not None
               and now_ms - f.added_ms >= policy.min_age_ms)
        if quiet[f.partition] or old:
            candidates.setdefault(f.partition, []).append(f)
    groups = [group for partition, small in candidates.items()
              for group in _groups_of(small, policy, math.inf if quiet[partition] else policy.tier_ratio)]
    groups.sort(key=lambda g: (sum(f.size for f in g), g[0].path))
    if policy.max_pass_bytes is None:
        return groups
    chosen, budget = [], policy.max_pass_bytes
    for group in groups:
        size = sum(f.size for f in group)
        if size <= budget:
            chosen.append(group)
            budget -= size
    return chosen


def live_files(tasks: Sequence[FileScanTask], added_ms: dict[str, int]) -> list[LiveFile]:
    return [LiveFile(t.file.file_path, t.file.partition, t.file.file_size_in_bytes, added_ms.get(t.file.file_path),
                     bool(t.delete_files)) for t in tasks]


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
            writer: iceberg.Writer, min_age_seconds: float | None = None, tier_ratio: float = 4.0,
            max_pass_bytes: int | None = None, commit_within_seconds: float | None = None,
            before_commit: Callable[[], None] | None = None,
            timings: dict[str, float] | None = None) -> tuple[int, int, int]:
    """Merge small files (plan_compaction); returns (partitions, files removed, files added).

    Each group is read, written once and committed in its own overwrite snapshot. A commit refused because
    another writer committed first is retried on the refreshed table with the same files while every file they
    replace is still live (the consumer only appends); when another compaction replaced one of them, the rest of
    the pass is planned again (never with a file this pass wrote: each file is rewritten at most once a pass).
    With `commit_within_seconds` (less than the orphan grace: orphan removal may run beside compaction), files
    not committed that soon after they were written are deleted, not committed, and the pass ends.
    `before_commit` runs between writing a group's files and each commit attempt (where a concurrent writer races).
    `timings`, when given, gets the seconds spent planning, reading, writing and committing, and the commit
    attempts (the benchmark's split of a pass).
    """
    spent = timings if timings is not None else {}
    policy = CompactionPolicy(target_bytes=target_bytes, quiet_ms=int(quiet_seconds * 1000), min_files=min_files,
                              min_age_ms=None if min_age_seconds is None else int(min_age_seconds * 1000),
                              tier_ratio=tier_ratio, max_pass_bytes=max_pass_bytes)
    written_this_pass: set[str] = set()
    partitions: set[Any] = set()
    removed = added = rewritten = 0
    for _plan in range(MAX_ATTEMPTS):
        started = time.monotonic()
        table.refresh()
        tasks = {task.file.file_path: task for task in table.scan().plan_files()}
        files = [f for f in live_files(list(tasks.values()), added_ms_by_path(table))
                 if f.path not in written_this_pass]
        budget = None if max_pass_bytes is None else max_pass_bytes - rewritten
        groups = plan_compaction(files, replace(policy, max_pass_bytes=budget), int(time.time() * 1000))
        known = {snapshot.snapshot_id for snapshot in table.metadata.snapshots}
        _add(spent, "plan", time.monotonic() - started)
        for group in groups:
            group_tasks = [tasks[f.path] for f in group]
            outcome = _rewrite_group(table, group_tasks, writer, known, commit_within_seconds, before_commit, spent)
            if outcome is None:
                break  # another compaction committed first: plan again
            new_files, known = outcome
            if not new_files:
                return len(partitions), removed, added  # too late to commit: the pass ends
            written_this_pass.update(f.file_path for f in new_files)
            partitions.add(group[0].partition)
            removed += len(group)
            added += len(new_files)
            rewritten += sum(f.size for f in group)
        else:
            return len(partitions), removed, added
    raise CommitFailedException(f"{table.name()}: compaction planned {MAX_ATTEMPTS} times, another always won")


def _rewrite_group(table: Table, group: list[FileScanTask], writer: iceberg.Writer, known: set[int],
                   commit_within_seconds: float | None, before_commit: Callable[[], None] | None,
                   spent: dict[str, float]) -> tuple[list[DataFile], set[int]] | None:
    """Rewrite one group and commit it: (the files added, the snapshots known after the commit); ([], known)
    when the files could not be committed within `commit_within_seconds` (deleted again); None when a snapshot
    that is not an append came first (the group may be stale)."""
    started = time.monotonic()
    rows = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue()).to_table(group)
    expected = sum(task.file.record_count for task in group)
    if rows.num_rows != expected:
        raise RuntimeError(f"compaction read {rows.num_rows} rows from files holding {expected}")
    written_at = time.monotonic()
    _add(spent, "read", written_at - started)
    new_files = iceberg.write_data_files(table, rows.cast(_small_offsets(rows.schema)), writer)
    committing = time.monotonic()
    _add(spent, "write", committing - written_at)
    try:
        return _commit_group(table, group, new_files, known, written_at, commit_within_seconds, before_commit, spent)
    finally:
        _add(spent, "commit", time.monotonic() - committing)


def _commit_group(table: Table, group: list[FileScanTask], new_files: list[DataFile], known: set[int],
                  written_at: float, commit_within_seconds: float | None, before_commit: Callable[[], None] | None,
                  spent: dict[str, float]) -> tuple[list[DataFile], set[int]] | None:
    """Replace the group's files by the new ones in one overwrite snapshot, retried while only appends came
    between (see _rewrite_group for what it returns)."""
    for attempt in range(MAX_COMMIT_ATTEMPTS):
        _add(spent, "commit_attempts", 1)
        if attempt:
            table.refresh()
            if not only_appends_since(table.metadata, known):
                _delete(table, new_files)
                return None
        if commit_within_seconds is not None and time.monotonic() - written_at > commit_within_seconds:
            _delete(table, new_files)
            return [], known
        if before_commit is not None:
            before_commit()
        try:
            with iceberg.transaction(table) as txn, txn.update_snapshot(
                    snapshot_properties={"eventpipe.maintenance": "compaction"}).overwrite() as overwrite:
                for task in group:
                    overwrite.delete_data_file(task.file)
                for data_file in new_files:
                    overwrite.append_data_file(data_file)
        except CommitFailedException:
            time.sleep(0.02 * (1 + attempt % 5))  # short: the next writer's commit is never far away
            continue
        # The catalog refuses a commit not based on its newest metadata: all the table holds now is known.
        return new_files, {snapshot.snapshot_id for snapshot in table.metadata.snapshots}
    _delete(table, new_files)
    raise CommitFailedException(f"{table.name()}: compaction's commit lost {MAX_COMMIT_ATTEMPTS} times in a row")


def _add(spent: dict[str, float], key: str, value: float) -> None:
    spent[key] = round(spent.get(key, 0.0) + value, 3)


def _small_offsets(schema: pa.Schema) -> pa.Schema:
    """pyiceberg's reader gives large_string/large_binary/large_list; the consumer writes (and its readers get)
    the 32-bit offset types: compacted files keep them (the core writer stores the Arrow schema it is given)."""
    return pa.schema([field.with_type(_small_type(field.type)) for field in schema], metadata=schema.metadata)


def _small_type(arrow_type: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(arrow_type):
        return pa.string()
    if pa.types.is_large_binary(arrow_type):
        return pa.binary()
    if pa.types.is_large_list(arrow_type) or pa.types.is_list(arrow_type):
        return pa.list_(arrow_type.value_field.with_type(_small_type(arrow_type.value_type)))
    if pa.types.is_map(arrow_type):
        return pa.map_(arrow_type.key_field.with_type(_small_type(arrow_type.key_type)),
                       arrow_type.item_field.with_type(_small_type(arrow_type.item_type)))
    if pa.types.is_struct(arrow_type):
        return pa.struct([f.with_type(_small_type(f.type)) for f in arrow_type])
    return arrow_type


def _delete(table: Table, files: Sequence[DataFile]) -> None:
    """Delete files this compaction wrote and never committed (nothing references them)."""
    for data_file in files:
        table.io.delete(data_file.file_path)


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
    """Every file a snapshot or a metadata version of the table points at (scheme stripped).

    Each manifest is read once: an append carries every earlier manifest into its snapshot, so reading each
    snapshot's manifests anew reads the same files once per snapshot kept."""
    metadata = table.metadata
    refs = {_strip(table.metadata_location)}
    refs |= {_strip(entry.metadata_file) for entry in metadata.metadata_log}
    for snapshot in metadata.snapshots:
        refs.add(_strip(snapshot.manifest_list))
        for manifest in snapshot.manifests(table.io):
            path = _strip(manifest.manifest_path)
            if path in refs:
                continue
            refs.add(path)
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
    """Delete files under the table location that nothing references and that were older than the grace when the
    table was read.

    The cutoff is taken before the refresh, not after reading the references: reading every manifest of a long
    history can take longer than the grace, and a file a writer committed after the refresh (so missing from these
    references) would then count as old enough to delete (a live manifest and its data file were).
    """
    filesystem, root = _filesystem(table)
    cutoff = datetime.fromtimestamp(time.time() - grace_seconds, tz=UTC)
    table.refresh()
    refs = referenced_files(table)
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
                min_age_seconds=min_age_seconds, tier_ratio=settings.maintenance_tier_ratio,
                max_pass_bytes=settings.maintenance_max_pass_bytes,
                commit_within_seconds=settings.maintenance_orphan_grace_seconds / 2, writer="core",
                timings=report.compaction_seconds)
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
