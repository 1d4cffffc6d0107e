"""Table maintenance (compaction, expiry, orphans) on a real SQL catalog: rows unchanged, checkpoint kept."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Hashable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from eventpipe_consumer import checkpoints, iceberg, maintenance
from hypothesis import given, settings
from hypothesis import strategies as st
from pyiceberg.catalog import Catalog
from pyiceberg.conversions import from_bytes
from pyiceberg.table import Table

from tests.helpers.consumer_helpers import STREAM, commit, piece, raw_rows


def _sorted(rows: pa.Table) -> list[dict[str, object]]:
    """The rows as values, sorted: compaction writes string columns with 32-bit offsets (as the consumer does),
    pyiceberg's writer with 64-bit ones, so the Arrow types may differ while every value is the same."""
    return rows.sort_by([("shard_id", "ascending"), ("sequence_number", "ascending")]).to_pylist()


def _live_files(table: Table) -> list[str]:
    return [task.file.file_path for task in table.scan().plan_files()]


def test_compaction_keeps_rows_and_checkpoint(tables: tuple[Catalog, Table, Table]) -> None:
    _, raw, _ = tables
    for n in range(6):  # six small commits, two partitions each
        rows = pa.concat_tables([raw_rows("a", [n * 10 + 1, n * 10 + 2], day=26), raw_rows("a", [n * 10 + 3], day=27)])
        commit(raw, [iceberg.Piece("a", n * 10 + 1, n * 10 + 3, rows)])
    before_rows = _sorted(raw.scan().to_arrow())
    before_map = checkpoints.read_map(raw.metadata, STREAM)
    assert len(_live_files(raw)) == 12

    partitions, removed, added = maintenance.compact(raw, target_bytes=64 * 1024 * 1024, min_files=2,
                                                     quiet_seconds=0, writer="pyiceberg")
    raw.refresh()
    assert (partitions, removed, added) == (2, 12, 2)
    assert len(_live_files(raw)) == 2
    assert _sorted(raw.scan().to_arrow()) == before_rows
    assert checkpoints.read_map(raw.metadata, STREAM) == before_map
    # Nothing left to do the second time.
    assert maintenance.compact(raw, target_bytes=64 * 1024 * 1024, min_files=2, quiet_seconds=0,
                               writer="pyiceberg") == (0, 0, 0)


def test_recently_written_partitions_are_left_alone(tables: tuple[Catalog, Table, Table]) -> None:
    _, raw, _ = tables
    for n in range(3):
        commit(raw, [piece("a", n * 5 + 1, n * 5 + 5)])
    assert maintenance.compact(raw, target_bytes=1 << 26, min_files=2, quiet_seconds=3600,
                               writer="pyiceberg") == (0, 0, 0)


def test_min_age_compacts_a_partition_still_written(tables: tuple[Catalog, Table, Table]) -> None:
    """A partition written all day is never quiet; with a minimum age its committed files are compacted anyway
    (rows and checkpoint unchanged), and files younger than the minimum age are left alone."""
    _, raw, _ = tables
    for n in range(4):
        commit(raw, [piece("a", n * 5 + 1, n * 5 + 5)])
    before_rows = _sorted(raw.scan().to_arrow())
    before_map = checkpoints.read_map(raw.metadata, STREAM)
    assert maintenance.compact(raw, target_bytes=1 << 26, min_files=2, quiet_seconds=3600, min_age_seconds=3600,
                               writer="pyiceberg") == (0, 0, 0)
    assert maintenance.compact(raw, target_bytes=1 << 26, min_files=2, quiet_seconds=3600, min_age_seconds=0,
                               writer="pyiceberg") == (1, 4, 1)
    raw.refresh()
    assert len(_live_files(raw)) == 1
    assert _sorted(raw.scan().to_arrow()) == before_rows
    assert checkpoints.read_map(raw.metadata, STREAM) == before_map


def test_a_concurrent_append_retries_the_commit_not_the_rewrite(tables: tuple[Catalog, Table, Table]) -> None:
    """The consumer commits between compaction's rewrite and its commit: compaction commits the files it wrote
    (no second rewrite, no orphan of its own), the consumer's new file stays live, every row is there once."""
    catalog, raw, _ = tables
    for n in range(3):
        commit(raw, [piece("a", n * 4 + 1, n * 4 + 4)])
    consumer_table = catalog.load_table("shop.raw_events")
    data_dir = Path(raw.location().removeprefix("file://")) / "data"
    files_before = set(data_dir.rglob("*.parquet"))
    attempts: list[int] = []

    def consumer_commits_first() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            commit(consumer_table, [piece("a", 13, 16)])

    result = maintenance.compact(raw, target_bytes=1 << 26, min_files=2, quiet_seconds=0,
                                 writer="pyiceberg", before_commit=consumer_commits_first)
    assert result == (1, 3, 1)
    assert len(attempts) == 2, "the first commit attempt lost to the consumer's, the second won"
    raw.refresh()
    new_files = set(data_dir.rglob("*.parquet")) - files_before
    assert len(new_files) == 2, "one file of the consumer, one of compaction: the rewrite ran once"
    live = {Path(p.removeprefix("file://")) for p in _live_files(raw)}
    assert live == new_files
    rows = raw.scan().to_arrow()
    assert sorted(int(s) for s in rows["sequence_number"].to_pylist()) == list(range(1, 17))
    assert checkpoints.read_map(raw.metadata, STREAM) == {"a": 16}


def test_a_concurrent_compaction_makes_the_other_plan_again(tables: tuple[Catalog, Table, Table]) -> None:
    """Two maintenance runs at once: the one that loses the commit sees a snapshot that removed files (not an
    append), plans again, finds nothing left to do; every row is there once, in the winner's one file."""
    catalog, raw, _ = tables
    for n in range(3):
        commit(raw, [piece("a", n * 4 + 1, n * 4 + 4)])
    before_rows = _sorted(raw.scan().to_arrow())
    other = catalog.load_table("shop.raw_events")
    results: list[tuple[int, int, int]] = []

    def other_compacts_first() -> None:
        if not results:
            results.append(maintenance.compact(other, target_bytes=1 << 26, min_files=2, quiet_seconds=0,
                                               writer="pyiceberg"))

    assert maintenance.compact(raw, target_bytes=1 << 26, min_files=2, quiet_seconds=0, writer="pyiceberg",
                               before_commit=other_compacts_first) == (0, 0, 0)
    assert results == [(1, 3, 1)]
    raw.refresh()
    assert len(_live_files(raw)) == 1
    assert _sorted(raw.scan().to_arrow()) == before_rows


def test_expiry_keeps_the_checkpoint_chain(tables: tuple[Catalog, Table, Table]) -> None:
    _, raw, _ = tables
    for n in range(4):
        commit(raw, [piece("a", n * 3 + 1, n * 3 + 3)])
    maintenance.compact(raw, target_bytes=1 << 26, min_files=2, quiet_seconds=0, writer="pyiceberg")
    raw.refresh()
    before_rows = _sorted(raw.scan().to_arrow())
    holder = checkpoints.checkpoint_snapshot(raw.metadata, STREAM)
    assert holder is not None
    expired = maintenance.expire(raw, retention_seconds=0)
    raw.refresh()
    remaining = {s.snapshot_id for s in raw.metadata.snapshots}
    assert expired == 3, "the three older consumer commits go; the checkpoint holder and the compaction stay"
    assert holder.snapshot_id in remaining
    assert checkpoints.read_map(raw.metadata, STREAM) == {"a": 12}
    assert _sorted(raw.scan().to_arrow()) == before_rows


def test_orphans_older_than_the_grace_are_deleted(tables: tuple[Catalog, Table, Table]) -> None:
    _, raw, _ = tables
    commit(raw, [piece("a", 1, 3)])
    commit(raw, [piece("a", 4, 6)])
    data_dir = Path(raw.location().removeprefix("file://")) / "data"
    old_orphan = data_dir / "stray-old.parquet"
    new_orphan = data_dir / "stray-new.parquet"
    old_orphan.write_bytes(b"not referenced")
    new_orphan.write_bytes(b"maybe a file a consumer is about to commit")
    past = time.time() - 7200
    os.utime(old_orphan, (past, past))
    before_rows = _sorted(raw.scan().to_arrow())
    deleted = maintenance.delete_orphans(raw, grace_seconds=3600)
    assert deleted == [str(old_orphan)]
    assert new_orphan.exists()
    assert _sorted(raw.scan().to_arrow()) == before_rows
    # After compaction + expiry, the replaced files become orphans too; the table still reads the same.
    maintenance.compact(raw, target_bytes=1 << 26, min_files=2, quiet_seconds=0, writer="pyiceberg")
    maintenance.expire(raw, retention_seconds=0)
    # A negative grace puts the cutoff in the future: every unreferenced file counts as old.
    deleted = maintenance.delete_orphans(raw, grace_seconds=-10)
    raw.refresh()
    assert str(new_orphan) in deleted
    assert all(Path(p.removeprefix("file://")).exists() for p in _live_files(raw))
    assert _sorted(raw.scan().to_arrow()) == before_rows


def test_a_commit_made_while_the_references_are_read_is_not_an_orphan(
        tables: tuple[Catalog, Table, Table], monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer commits after orphan removal refreshed the table, while it reads the references, and that reading
    outlasts the grace (it read every manifest of a long history: 173 s in a freshness run with a 120 s grace).
    The new commit's files are missing from the references read, and must not count as old: they were younger than
    the grace when the table was read. The clock is moved on inside the reading (a pass slower than the grace
    cannot be caused in a test of seconds otherwise); the commit itself is real."""
    catalog, raw, _ = tables
    commit(raw, [piece("a", 1, 3)])
    writer = catalog.load_table("shop.raw_events")
    real_read, real_time = maintenance.referenced_files, time.time
    late = {"by": 0.0}

    def read_then_commit(table: Table) -> set[str]:
        refs = real_read(table)
        commit(writer, [piece("a", 4, 6)])
        late["by"] = 300.0
        return refs

    monkeypatch.setattr(maintenance, "referenced_files", read_then_commit)
    monkeypatch.setattr(maintenance.time, "time", lambda: real_time() + late["by"])
    deleted = maintenance.delete_orphans(raw, grace_seconds=120)
    monkeypatch.undo()
    raw.refresh()
    assert deleted == []
    assert all(Path(p.removeprefix("file://")).exists() for p in _live_files(raw))
    assert len(raw.scan().to_arrow()) == 6


def test_maintenance_beside_a_live_writer(tables: tuple[Catalog, Table, Table]) -> None:
    """Compaction and expiry while another process commits: every committed row is there exactly once."""
    catalog, raw, _ = tables
    for n in range(5):
        commit(raw, [iceberg.Piece("a", n * 2 + 1, n * 2 + 2, raw_rows("a", [n * 2 + 1, n * 2 + 2], day=26))])
    writer_table = catalog.load_table("shop.raw_events")
    stop = threading.Event()
    errors: list[Exception] = []

    def live_writer() -> None:
        n = 0
        try:
            while not stop.is_set() and n < 30:
                commit(writer_table, [iceberg.Piece("b", n + 1, n + 1, raw_rows("b", [n + 1], day=27))])
                n += 1
        except Exception as exc:  # noqa: BLE001 (re-raised in the test thread below)
            errors.append(exc)

    thread = threading.Thread(target=live_writer)
    thread.start()
    for _ in range(3):
        maintenance.compact(raw, target_bytes=1 << 26, min_files=2, quiet_seconds=0, writer="pyiceberg")
        maintenance.expire(raw, retention_seconds=0)
    stop.set()
    thread.join()
    assert not errors, errors
    raw.refresh()
    rows = raw.scan().to_arrow()
    keys = list(zip(rows["shard_id"].to_pylist(), rows["sequence_number"].to_pylist(), strict=True))
    assert len(keys) == len(set(keys))
    final = checkpoints.read_map(raw.metadata, STREAM)
    assert sorted(k for k in keys if k[0] == "a") == sorted(("a", str(i)) for i in range(1, 11))
    assert sorted(int(s) for shard, s in keys if shard == "b") == list(range(1, final["b"] + 1))


def test_maintenance_command(tmp_path: Path) -> None:
    """`python -m eventpipe_consumer maintenance` on the settings' catalog prints one report per table."""
    import json
    import subprocess
    import sys

    from eventpipe_consumer.settings import ConsumerSettings

    from tests.helpers.consumer_helpers import REPO, settings_env

    settings = ConsumerSettings(state_dir=tmp_path, stream_name=STREAM)  # type: ignore[call-arg]
    catalog = iceberg.open_catalog(settings.catalog_name, settings.resolved_catalog_properties())
    raw, _ = iceberg.ensure_tables(catalog, settings.namespace)
    for n in range(3):
        commit(raw, [piece("a", n * 4 + 1, n * 4 + 4)])
    before = _sorted(raw.scan().to_arrow())
    out = subprocess.run([sys.executable, "-m", "eventpipe_consumer", "maintenance", "--quiet-seconds", "0"],
                         env=settings_env(settings), cwd=REPO, capture_output=True, text=True, check=True)
    reports = {r["table"]: r for r in json.loads(out.stdout)}
    assert reports["raw_events"]["files_removed"] == 3 and reports["raw_events"]["files_added"] == 1
    # Where the compaction's time went (for the benchmark): one commit attempt, nothing raced it.
    assert set(reports["raw_events"]["compaction_seconds"]) == {"plan", "read", "write", "commit", "commit_attempts"}
    assert reports["raw_events"]["compaction_seconds"]["commit_attempts"] == 1
    assert reports["raw_events_rejected"]["compacted_partitions"] == 0
    raw.refresh()
    assert _sorted(raw.scan().to_arrow()) == before


# ---------------------------------------------------------------------------------------------- tiered compaction
PARTITIONS = ("p0", "p1", "p2")
NOW_MS = 10_000_000


@st.composite
def live_file_sets(draw: st.DrawFn) -> list[maintenance.LiveFile]:
    n = draw(st.integers(0, 40))
    return [maintenance.LiveFile(
        path=f"f{i}", partition=draw(st.sampled_from(PARTITIONS)), size=draw(st.integers(1, 5_000)),
        added_ms=draw(st.none() | st.integers(0, NOW_MS)), has_deletes=draw(st.integers(0, 9).map(lambda k: k == 0)),
    ) for i in range(n)]


policies = st.builds(
    maintenance.CompactionPolicy, target_bytes=st.integers(100, 20_000), quiet_ms=st.integers(0, NOW_MS),
    min_files=st.integers(2, 5), min_age_ms=st.none() | st.integers(0, NOW_MS),
    tier_ratio=st.floats(1.0, 16.0), done_fraction=st.floats(0.05, 1.0),
    max_pass_bytes=st.none() | st.integers(1, 40_000))


def _quiet(files: list[maintenance.LiveFile], policy: maintenance.CompactionPolicy) -> set[Hashable]:
    last: dict[Hashable, int] = {}
    for f in files:
        last[f.partition] = max(last.get(f.partition, 0), NOW_MS if f.added_ms is None else f.added_ms)
    return {p for p, t in last.items() if NOW_MS - t >= policy.quiet_ms}


@given(files=live_file_sets(), policy=policies)
@settings(max_examples=400, deadline=None)
def test_a_compaction_plan_rewrites_each_file_at_most_once_within_its_tier(
        files: list[maintenance.LiveFile], policy: maintenance.CompactionPolicy) -> None:
    """Every planned file is live and in one group only; a group is one partition, at least min_files files,
    at most the target; files with deletes or of at least done_fraction of the target are left alone; a file is
    planned only when its partition is quiet or it is old enough; in a partition still written, a group's
    largest file is at most tier_ratio times its smallest (the tier rule); the pass stays within its budget."""
    groups = maintenance.plan_compaction(files, policy, NOW_MS)
    planned = [f for group in groups for f in group]
    assert len({f.path for f in planned}) == len(planned), "a file in two groups"
    assert set(planned) <= set(files)
    quiet = _quiet(files, policy)
    for group in groups:
        assert len({f.partition for f in group}) == 1
        assert len(group) >= policy.min_files
        assert sum(f.size for f in group) <= policy.target_bytes
        for f in group:
            assert not f.has_deletes and f.size < policy.target_bytes * policy.done_fraction
            old = policy.min_age_ms is not None and f.added_ms is not None and NOW_MS - f.added_ms >= policy.min_age_ms
            assert f.partition in quiet or old
        if group[0].partition not in quiet:
            sizes = [f.size for f in group]
            assert max(sizes) <= policy.tier_ratio * min(sizes)
    if policy.max_pass_bytes is not None:
        assert sum(f.size for f in planned) <= policy.max_pass_bytes


@given(commits=st.lists(st.integers(1, 400), min_size=5, max_size=300), per_pass=st.integers(1, 20),
       ratio=st.floats(2.0, 8.0), target=st.integers(5_000, 50_000))
@settings(max_examples=150, deadline=None)
def test_tiered_compaction_of_a_partition_written_all_day_rewrites_each_byte_a_few_times(
        commits: list[int], per_pass: int, ratio: float, target: int) -> None:
    """One partition written all day, a pass after every `per_pass` commits, each group merged into one file:
    a byte is rewritten at most about log(done size / smallest commit) / log(1 + 1/ratio) times (the file holding
    it grows by at least that factor each time), never the same compacted file on every pass; nothing is lost."""
    policy = maintenance.CompactionPolicy(target_bytes=target, quiet_ms=NOW_MS + 1, min_age_ms=0, tier_ratio=ratio)
    live: dict[str, tuple[int, int]] = {}  # path -> (size, the most rewrites any of its bytes had)
    for n, size in enumerate(commits):
        live[f"c{n}"] = (size, 0)
        if n % per_pass and n != len(commits) - 1:
            continue
        files = [maintenance.LiveFile(path, "day", s, 0) for path, (s, _) in live.items()]
        for i, group in enumerate(maintenance.plan_compaction(files, policy, NOW_MS)):
            merged = (sum(f.size for f in group), 1 + max(live[f.path][1] for f in group))
            for f in group:
                del live[f.path]
            live[f"m{n}-{i}"] = merged
    assert sum(s for s, _ in live.values()) == sum(commits)
    bound = math.log(target * policy.done_fraction / min(commits)) / math.log(1 + 1 / ratio) + 1
    assert max(r for _, r in live.values()) <= bound


def _big_piece(shard: str, first: int, count: int) -> iceberg.Piece:
    return iceberg.Piece(shard, first, first + count - 1, raw_rows(shard, list(range(first, first + count))))


def test_tiered_compaction_leaves_the_big_file_until_files_of_its_size_come(
        tables: tuple[Catalog, Table, Table]) -> None:
    """A partition still written: its big compacted file is not rewritten with each pass's small files (the
    small ones merge among themselves); with a tier ratio that spans both sizes, all merge. Rows and
    checkpoint unchanged throughout, written by the Rust core's writer."""
    _, raw, _ = tables
    commit(raw, [_big_piece("a", 1, 20_000)])
    for n in range(4):
        commit(raw, [piece("a", 20_001 + n * 3, 20_003 + n * 3)])
    sizes = {task.file.file_path: task.file.file_size_in_bytes for task in raw.scan().plan_files()}
    big = max(sizes, key=lambda p: sizes[p])
    assert sizes[big] > 4 * max(s for p, s in sizes.items() if p != big)
    before_rows = _sorted(raw.scan().to_arrow())
    before_map = checkpoints.read_map(raw.metadata, STREAM)

    assert maintenance.compact(raw, target_bytes=1 << 26, min_files=2, quiet_seconds=3600, min_age_seconds=0,
                               tier_ratio=4.0, writer="core") == (1, 4, 1)
    raw.refresh()
    live = set(_live_files(raw))
    assert big in live and len(live) == 2
    assert _sorted(raw.scan().to_arrow()) == before_rows
    assert checkpoints.read_map(raw.metadata, STREAM) == before_map

    assert maintenance.compact(raw, target_bytes=1 << 26, min_files=2, quiet_seconds=3600, min_age_seconds=0,
                               tier_ratio=1000.0, writer="core") == (1, 2, 1)
    raw.refresh()
    assert big not in _live_files(raw) and len(_live_files(raw)) == 1
    assert _sorted(raw.scan().to_arrow()) == before_rows
    assert checkpoints.read_map(raw.metadata, STREAM) == before_map


def test_a_pass_rewrites_at_most_its_budget(tables: tuple[Catalog, Table, Table]) -> None:
    """With a budget of one group's bytes, a pass merges one group (the cheapest: one-row files) and leaves the
    other partition's (two-row files) for a pass with a larger budget."""
    _, raw, _ = tables
    for n in range(3):
        commit(raw, [iceberg.Piece("a", n * 10 + 1, n * 10 + 3, pa.concat_tables(
            [raw_rows("a", [n * 10 + 1], day=26), raw_rows("a", [n * 10 + 2, n * 10 + 3], day=27)]))])
    sizes = [task.file.file_size_in_bytes for task in raw.scan().plan_files()]
    before_rows = _sorted(raw.scan().to_arrow())
    budget = sum(sorted(sizes)[:3]) + 1  # the three smallest: one partition's three files, not both
    assert maintenance.compact(raw, target_bytes=1 << 26, min_files=2, quiet_seconds=0, max_pass_bytes=budget,
                               writer="core") == (1, 3, 1)
    raw.refresh()
    live = _live_files(raw)
    assert len(live) == 4 and sum("event_ts_day=2026-11-26" in p for p in live) == 1, "the cheaper partition first"
    assert maintenance.compact(raw, target_bytes=1 << 26, min_files=2, quiet_seconds=0, max_pass_bytes=2 * budget,
                               writer="core") == (1, 3, 1)
    raw.refresh()
    assert len(_live_files(raw)) == 2
    assert _sorted(raw.scan().to_arrow()) == before_rows


def test_core_writer_keeps_field_ids_and_metrics(tables: tuple[Catalog, Table, Table]) -> None:
    """The compacted file written by the Rust core: Parquet field ids as the table's, and the manifest's
    metrics (counts, nulls, bounds per field id) those of the files it replaced, merged."""
    _, raw, _ = tables
    for n in range(3):
        commit(raw, [piece("a", n * 4 + 1, n * 4 + 4)])
    sources = [task.file for task in raw.scan().plan_files()]
    assert maintenance.compact(raw, target_bytes=1 << 26, min_files=2, quiet_seconds=0, writer="core") == (1, 3, 1)
    raw.refresh()
    [compacted] = [task.file for task in raw.scan().plan_files()]
    schema = raw.schema()
    ids = {f.name: int(f.metadata[b"PARQUET:field_id"]) for f in pq.read_schema(compacted.file_path[len("file://"):])}
    assert ids == {f.name: f.field_id for f in schema.fields}
    assert compacted.record_count == sum(f.record_count for f in sources) == 12
    assert compacted.partition == sources[0].partition
    for field_id in ids.values():
        assert compacted.value_counts[field_id] == sum(f.value_counts[field_id] for f in sources)
        assert compacted.null_value_counts[field_id] == sum(f.null_value_counts[field_id] for f in sources)
        kind = schema.find_field(field_id).field_type
        lows = [from_bytes(kind, f.lower_bounds[field_id]) for f in sources if field_id in f.lower_bounds]
        highs = [from_bytes(kind, f.upper_bounds[field_id]) for f in sources if field_id in f.upper_bounds]
        assert (field_id in compacted.lower_bounds) == bool(lows)
        if lows:
            assert from_bytes(kind, compacted.lower_bounds[field_id]) == min(lows)
            assert from_bytes(kind, compacted.upper_bounds[field_id]) == max(highs)


def test_files_not_committed_in_time_are_deleted_not_committed(tables: tuple[Catalog, Table, Table]) -> None:
    """Orphan removal may run beside compaction: files compaction could not commit within its limit (less than
    the orphan grace) are deleted by compaction itself and never committed; the table is as before."""
    _, raw, _ = tables
    for n in range(3):
        commit(raw, [piece("a", n * 4 + 1, n * 4 + 4)])
    data_dir = Path(raw.location().removeprefix("file://")) / "data"
    files_before = set(data_dir.rglob("*.parquet"))
    live_before = _live_files(raw)
    assert maintenance.compact(raw, target_bytes=1 << 26, min_files=2, quiet_seconds=0, writer="core",
                               commit_within_seconds=-1.0) == (0, 0, 0)
    raw.refresh()
    assert set(data_dir.rglob("*.parquet")) == files_before
    assert _live_files(raw) == live_before


def test_housekeeping_in_its_own_loop_beside_compaction_and_a_writer(tables: tuple[Catalog, Table, Table]) -> None:
    """Expiry and orphan removal in their own loop (a thread of their own, no grace, no retention), while
    compaction passes run in another and a writer commits: the checkpoint chain stays, every committed row is
    there exactly once, and every live file exists."""
    catalog, raw, _ = tables
    for n in range(5):
        commit(raw, [piece("a", n * 2 + 1, n * 2 + 2)])
    writer_table = catalog.load_table("shop.raw_events")
    housekeeping_table = catalog.load_table("shop.raw_events")
    stop = threading.Event()
    errors: list[Exception] = []
    housekeeping_passes: list[int] = []

    def live_writer() -> None:
        try:
            for n in range(25):
                commit(writer_table, [iceberg.Piece("b", n + 1, n + 1, raw_rows("b", [n + 1], day=27))])
        except Exception as exc:  # noqa: BLE001 (re-raised in the test thread below)
            errors.append(exc)

    def housekeeping() -> None:
        try:
            while not stop.is_set():
                maintenance.expire(housekeeping_table, retention_seconds=0)
                # Grace longer than this test: a file being written is never taken for an orphan.
                maintenance.delete_orphans(housekeeping_table, grace_seconds=600)
                housekeeping_passes.append(1)
        except Exception as exc:  # noqa: BLE001 (re-raised in the test thread below)
            errors.append(exc)

    threads = [threading.Thread(target=live_writer), threading.Thread(target=housekeeping)]
    for thread in threads:
        thread.start()
    passes = 0
    while threads[0].is_alive() or passes < 2:
        maintenance.compact(raw, target_bytes=1 << 26, min_files=2, quiet_seconds=0, writer="core",
                            commit_within_seconds=300)
        passes += 1
    threads[0].join()
    stop.set()
    threads[1].join()
    assert not errors, errors
    assert housekeeping_passes, "the housekeeping loop ran"
    raw.refresh()
    assert len(raw.metadata.snapshots) < 25 + 5, "expiry kept up beside the writer"
    rows = raw.scan().to_arrow()
    keys = list(zip(rows["shard_id"].to_pylist(), rows["sequence_number"].to_pylist(), strict=True))
    assert len(keys) == len(set(keys))
    assert checkpoints.read_map(raw.metadata, STREAM) == {"a": 10, "b": 25}
    assert sorted(int(s) for shard, s in keys if shard == "a") == list(range(1, 11))
    assert sorted(int(s) for shard, s in keys if shard == "b") == list(range(1, 26))
    assert all(Path(p.removeprefix("file://")).exists() for p in _live_files(raw))
