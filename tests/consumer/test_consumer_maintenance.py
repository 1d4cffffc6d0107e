"""Table maintenance (compaction, expiry, orphans) on a real SQL catalog: rows unchanged, checkpoint kept."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pyarrow as pa
from eventpipe_consumer import checkpoints, iceberg, maintenance
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from tests.helpers.consumer_helpers import STREAM, commit, piece, raw_rows


def _sorted(rows: pa.Table) -> pa.Table:
    return rows.sort_by([("shard_id", "ascending"), ("sequence_number", "ascending")])


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
    assert _sorted(raw.scan().to_arrow()).equals(before_rows)
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
    assert _sorted(raw.scan().to_arrow()).equals(before_rows)


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
    assert _sorted(raw.scan().to_arrow()).equals(before_rows)
    # After compaction + expiry, the replaced files become orphans too; the table still reads the same.
    maintenance.compact(raw, target_bytes=1 << 26, min_files=2, quiet_seconds=0, writer="pyiceberg")
    maintenance.expire(raw, retention_seconds=0)
    # A negative grace puts the cutoff in the future: every unreferenced file counts as old.
    deleted = maintenance.delete_orphans(raw, grace_seconds=-10)
    raw.refresh()
    assert str(new_orphan) in deleted
    assert all(Path(p.removeprefix("file://")).exists() for p in _live_files(raw))
    assert _sorted(raw.scan().to_arrow()).equals(before_rows)


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
    assert reports["raw_events_rejected"]["compacted_partitions"] == 0
    raw.refresh()
    assert _sorted(raw.scan().to_arrow()).equals(before)
