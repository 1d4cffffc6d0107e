"""The checkpointed commit on a real SQL catalog (SQLite) with a file warehouse: exactly once, full maps."""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from eventpipe_consumer import checkpoints, iceberg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from tests.helpers.consumer_helpers import STREAM, commit, new_tables, piece, raw_rows


def test_tables_are_created_once_with_zstd_and_no_pyiceberg_retries(tables: tuple[Catalog, Table, Table]) -> None:
    catalog, raw, rejected = tables
    again, _ = iceberg.ensure_tables(catalog, "shop")
    assert again.metadata.table_uuid == raw.metadata.table_uuid
    for table in (raw, rejected):
        assert table.properties["write.parquet.compression-codec"] == "zstd"
        assert table.properties["commit.retry.num-retries"] == "0"
    assert [f.name for f in raw.spec().fields] == ["event_ts_day"]


def test_replayed_pieces_are_committed_once(tables: tuple[Catalog, Table, Table]) -> None:
    _, raw, _ = tables
    first = commit(raw, [piece("a", 1, 10), piece("b", 1, 5)])
    assert first.record_count == 15 and first.checkpoint_map == {"a": 10, "b": 5}
    replay = commit(raw, [piece("a", 1, 10)])
    assert replay.snapshot_id is None and replay.record_count == 0
    overlap = commit(raw, [piece("a", 5, 14)])
    assert overlap.record_count == 4 and overlap.shard_ranges == {"a": (11, 14)}
    assert overlap.checkpoint_map == {"a": 14, "b": 5}, "the map must stay full"
    rows = raw.scan().to_arrow()
    assert sorted(rows["event_id"].to_pylist()) == sorted(
        [f"a-{i}" for i in range(1, 15)] + [f"b-{i}" for i in range(1, 6)])


def test_one_file_per_day_partition(tables: tuple[Catalog, Table, Table]) -> None:
    _, raw, _ = tables
    rows = pa.concat_tables([raw_rows("a", [1, 2, 3], day=26), raw_rows("a", [4, 5], day=27)])
    outcome = commit(raw, [iceberg.Piece("a", 1, 5, rows)])
    assert len(outcome.data_files) == 2
    assert {p.split("/")[-2] for p in outcome.data_files} == {"event_ts_day=2026-11-26", "event_ts_day=2026-11-27"}


def test_concurrent_commit_is_retried_on_a_refreshed_table(tables: tuple[Catalog, Table, Table]) -> None:
    """A CommitFailedException from a concurrent writer: we refresh, keep their map entries and ours."""
    catalog, raw, _ = tables
    other = catalog.load_table("shop.raw_events")
    raced: list[iceberg.CommitOutcome] = []

    def concurrent_writer() -> None:
        if not raced:  # the other writer commits a and b between our write and our commit, once
            raced.append(commit(other, [piece("a", 1, 3), piece("b", 1, 2)]))

    outcome = iceberg.commit_pieces(raw, [piece("b", 1, 4)], stream=STREAM, writer="pyiceberg",
                                    before_commit=concurrent_writer)
    assert outcome.conflicts == 1
    assert outcome.checkpoint_map == {"a": 3, "b": 4}
    assert outcome.shard_ranges == {"b": (3, 4)}, "b's rows 1-2 were committed by the other writer"
    rows = raw.scan().to_arrow()
    assert sorted(rows["event_id"].to_pylist()) == sorted(["a-1", "a-2", "a-3", "b-1", "b-2", "b-3", "b-4"])


def test_commit_on_metadata_another_process_made_stale_is_refused_and_retried(
        tables: tuple[Catalog, Table, Table]) -> None:
    """The first attempt trusts the metadata this process last saw (no refresh within METADATA_TRUSTED_SECONDS);
    when a writer this process cannot see moved the branch since, the catalog refuses the commit and the retry on
    a refreshed table keeps both writers' rows exactly once."""
    catalog, raw, _ = tables
    commit(raw, [piece("a", 1, 2)])
    other = catalog.load_table("shop.raw_events")
    commit(other, [piece("a", 1, 3), piece("b", 1, 2)])
    # Another process's commit leaves no trace in this one: as far as this process knows, raw is the head.
    iceberg._known_head[raw.name()] = (raw.metadata_location, time.monotonic())
    outcome = commit(raw, [piece("a", 1, 4)])
    assert outcome.conflicts == 1, "the stale commit must have been refused once"
    assert outcome.checkpoint_map == {"a": 4, "b": 2}
    assert outcome.shard_ranges == {"a": (4, 4)}
    rows = raw.scan().to_arrow()
    assert sorted(rows["event_id"].to_pylist()) == sorted(["a-1", "a-2", "a-3", "a-4", "b-1", "b-2"])


def test_commit_skips_the_refresh_while_its_own_head_is_known(tables: tuple[Catalog, Table, Table],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Back to back commits of one handle read the metadata once; past METADATA_TRUSTED_SECONDS it is read again."""
    _, raw, _ = tables
    refreshes: list[str] = []
    refresh = Table.refresh

    def counted(table: Table) -> Table:
        refreshes.append(table.metadata_location)
        return refresh(table)

    monkeypatch.setattr(Table, "refresh", counted)
    commit(raw, [piece("a", 1, 2)])
    commit(raw, [piece("a", 3, 4)])
    commit(raw, [piece("a", 5, 6)])
    assert len(refreshes) == 1, "only the first commit reads the metadata"
    monkeypatch.setattr(iceberg, "METADATA_TRUSTED_SECONDS", 0.0)
    before = len(refreshes)
    commit(raw, [piece("a", 7, 8)])
    assert len(refreshes) == before + 1


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(1, 40), st.integers(0, 15)),
                min_size=1, max_size=8),
       st.integers(1, 3))
def test_property_15_checkpoints(ranges: list[tuple[str, int, int]], writers: int) -> None:
    """Property 15: Processing maintains checkpoints. Whatever pieces (replays, overlaps) several writers commit
    in any order, each sequence number lands exactly once and the map holds each shard's highest position."""
    with tempfile.TemporaryDirectory() as tmp:
        catalog, raw, _ = new_tables(Path(tmp))
        handles = [catalog.load_table("shop.raw_events") for _ in range(writers)]
        expected: dict[str, set[int]] = {}
        errors: list[BaseException] = []

        def work(index: int) -> None:
            try:
                for n, (shard, first, length) in enumerate(ranges):
                    if n % writers == index:
                        commit(handles[index], [piece(shard, first, first + length)])
            except Exception as exc:  # noqa: BLE001 (re-raised in the test thread below)
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        raw.refresh()
        rows = raw.scan().to_arrow()
        seen = list(zip(rows["shard_id"].to_pylist(), rows["sequence_number"].to_pylist(), strict=True))
        assert len(seen) == len(set(seen)), "a sequence number was committed twice"
        final = checkpoints.read_map(raw.metadata, STREAM)
        for shard, first, length in ranges:
            expected.setdefault(shard, set()).update(range(first, first + length + 1))
        for shard, numbers in expected.items():
            assert final[shard] == max(numbers)
            committed = {int(seq) for s, seq in seen if s == shard}
            assert max(numbers) in committed
            assert committed <= numbers


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(1, 30)), min_size=1, max_size=5))
def test_property_14_commits_update_catalog_metadata(batches: list[tuple[str, int]]) -> None:
    """Property 14: Iceberg commits update catalog metadata. Every commit moves the catalog's metadata pointer,
    adds one snapshot whose summary counts the added records and carries the full checkpoint map."""
    with tempfile.TemporaryDirectory() as tmp:
        catalog, raw, _ = new_tables(Path(tmp))
        positions: dict[str, int] = {}
        for shard, count in batches:
            before_location = catalog.load_table("shop.raw_events").metadata_location
            before_snapshots = len(raw.metadata.snapshots)
            first = positions.get(shard, 0) + 1
            outcome = commit(raw, [piece(shard, first, first + count - 1)])
            positions[shard] = first + count - 1
            fresh = catalog.load_table("shop.raw_events")
            assert fresh.metadata_location != before_location
            assert len(fresh.metadata.snapshots) == before_snapshots + 1
            snapshot = fresh.current_snapshot()
            assert snapshot is not None and snapshot.snapshot_id == outcome.snapshot_id
            assert snapshot.summary is not None and int(snapshot.summary["added-records"] or 0) == count
            assert checkpoints.decode(snapshot.summary, STREAM) == positions


def test_checkpoint_survives_maintenance_snapshots(tables: tuple[Catalog, Table, Table]) -> None:
    _, raw, _ = tables
    commit(raw, [piece("a", 1, 3)])
    with raw.transaction() as txn:
        txn.set_properties({"unrelated": uuid.uuid4().hex})
    raw.table_properties_updated = True
    with raw.transaction() as txn, txn.update_snapshot().fast_append():
        pass
    raw.refresh()
    assert checkpoints.read_map(raw.metadata, STREAM) == {"a": 3}


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(1, 20)), min_size=1, max_size=4))
def test_property_42_commits_create_audit_logs(batches: list[tuple[str, int]]) -> None:
    """Property 42: Iceberg commits create audit logs. Every commit logs exactly one JSON line whose snapshot id,
    data files, record count, shards and sequence ranges are those of the snapshot in the table."""
    import io
    import json

    from eventpipe_common.logging import configure_logging, get_logger
    from eventpipe_consumer.audit import AUDIT_MESSAGE, log_commit

    with tempfile.TemporaryDirectory() as tmp:
        _, raw, _ = new_tables(Path(tmp))
        stream = io.StringIO()
        configure_logging("consumer", "INFO", stream=stream)
        positions: dict[str, int] = {}
        outcomes = []
        for shard, count in batches:
            first = positions.get(shard, 0) + 1
            positions[shard] = first + count - 1
            outcome = commit(raw, [piece(shard, first, first + count - 1)])
            log_commit(get_logger(), outcome, 0.01)
            outcomes.append((outcome, shard, first, first + count - 1))
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert len(lines) == len(batches) and all(line["message"] == AUDIT_MESSAGE for line in lines)
        snapshots = {s.snapshot_id: s for s in raw.metadata.snapshots}
        for line, (outcome, shard, first, last) in zip(lines, outcomes, strict=True):
            assert line["component"] == "consumer" and line["level"] == "info" and line["timestamp"]
            assert line["snapshot_id"] == outcome.snapshot_id
            snapshot = snapshots[line["snapshot_id"]]
            assert snapshot.summary is not None
            assert int(snapshot.summary["added-records"] or 0) == line["record_count"] == last - first + 1
            assert int(snapshot.summary["added-data-files"] or 0) == len(line["data_files"])
            live = {t.file.file_path for t in raw.scan(snapshot_id=snapshot.snapshot_id).plan_files()}
            assert set(line["data_files"]) <= live
            assert line["shards"] == [shard]
            assert line["sequence_ranges"] == {shard: [str(first), str(last)]}


def test_transaction_builds_its_metadata_once_per_staged_update(tables: tuple[Catalog, Table, Table]) -> None:
    """iceberg.transaction reads the table's own metadata while nothing is staged (no copy), builds a copy once
    per staged update and reuses it between reads, never changes the table's metadata by staging, and commits
    what pyiceberg's Transaction commits."""
    _, raw, _ = tables
    commit(raw, [piece("a", 1, 3)])
    txn = iceberg.transaction(raw)
    first = txn.table_metadata
    assert first is raw.metadata, "nothing staged: no copy"
    txn.set_properties({"eventpipe.test": "staged"})
    staged = txn.table_metadata
    assert txn.table_metadata is staged, "no new copy without a new update"
    assert staged is not first and staged.properties["eventpipe.test"] == "staged"
    txn.set_properties({"eventpipe.other": "staged"})
    assert txn.table_metadata is not staged and txn.table_metadata.properties["eventpipe.other"] == "staged"
    assert "eventpipe.test" not in raw.metadata.properties, "staging must not touch the table"
    txn.commit_transaction()
    assert raw.properties["eventpipe.test"] == "staged"
    outcome = commit(raw, [piece("a", 4, 6)])
    snapshot = raw.metadata.current_snapshot()
    assert snapshot is not None and snapshot.snapshot_id == outcome.snapshot_id
    assert snapshot.summary is not None and snapshot.summary["added-records"] == "3"
    assert checkpoints.read_map(raw.metadata, STREAM) == {"a": 6}
    assert sorted(raw.scan().to_arrow()["event_id"].to_pylist()) == sorted(f"a-{i}" for i in range(1, 7))
