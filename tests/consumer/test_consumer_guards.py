"""The checkpoint can't silently vanish: maintenance keeps every stream's newest map, a consumer refuses a table
whose map is gone (unless told otherwise), and the no-retries table property is checked at every start and
before every commit. Real SQL catalog and Iceberg files; the consumer runs against kinesalite."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from eventpipe_consumer import checkpoints, guards, iceberg, maintenance
from eventpipe_consumer.settings import ConsumerSettings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyiceberg.table import Table

from tests.helpers.consumer_helpers import (
    Stream,
    committed,
    make_event,
    new_tables,
    raw_rows,
    run_consumer_until,
    settings_for,
    table_rows,
)

RETRIES = "commit.retry.num-retries"


def _tables(settings: ConsumerSettings) -> tuple[Table, Table]:
    catalog = iceberg.open_catalog(settings.catalog_name, settings.resolved_catalog_properties())
    return iceberg.ensure_tables(catalog, settings.namespace)


def _lose_the_checkpoint(settings: ConsumerSettings) -> Table:
    """What a maintenance tool that ignores our chain does: a consumer commit, an append without a map (say a
    backfill), then every snapshot but the current one expired."""
    raw, _ = _tables(settings)
    iceberg.commit_pieces(raw, [iceberg.Piece("shardId-000000000000", 1, 3, raw_rows("shardId-000000000000",
                                                                                    [1, 2, 3]))],
                          stream=settings.stream_name, writer="pyiceberg")
    raw.append(iceberg.conform(raw_rows("backfill", [1]), raw))
    raw.refresh()
    current = raw.metadata.current_snapshot()
    assert current is not None
    raw.maintenance.expire_snapshots().by_ids(
        [s.snapshot_id for s in raw.metadata.snapshots if s.snapshot_id != current.snapshot_id]).commit()
    raw.refresh()
    assert checkpoints.checkpoint_snapshot(raw.metadata, settings.stream_name) is None
    return raw


def test_a_consumer_refuses_a_table_whose_checkpoint_is_gone(stream: Stream, tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "state", stream)
    raw = _lose_the_checkpoint(settings)
    rows_before = raw.scan().to_arrow().num_rows
    stream.put_events([make_event(i) for i in range(5)])
    with pytest.raises(guards.MissingCheckpointError) as refused:
        asyncio.run(run_consumer_until(settings, lambda c: committed(c) >= 5, timeout=30))
    message = str(refused.value)
    assert f"holds a checkpoint map for stream {stream.name!r}" in message
    assert "EVENTPIPE_CONSUMER_ALLOW_MISSING_CHECKPOINT=true" in message and "TRIM_HORIZON" in message
    assert table_rows(settings).num_rows == rows_before, "nothing was committed"


def test_the_explicit_setting_starts_from_the_horizon(stream: Stream, tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "state", stream, consumer_allow_missing_checkpoint=True)
    raw = _lose_the_checkpoint(settings)
    rows_before = raw.scan().to_arrow().num_rows
    stream.put_events([make_event(i) for i in range(5)])
    asyncio.run(run_consumer_until(settings, lambda c: committed(c) >= 5, timeout=60))
    assert table_rows(settings).num_rows == rows_before + 5


def test_a_table_of_another_stream_is_refused_and_a_fresh_table_is_not(tmp_path: Path) -> None:
    _, raw, rejected = new_tables(tmp_path)
    both = [(raw, ["orders"]), (rejected, ["orders", "orders#quarantine"])]
    assert guards.check_checkpoints(both, allow_missing=False) == []
    iceberg.commit_pieces(raw, [iceberg.Piece("s0", 1, 1, raw_rows("s0", [1]))], stream="clicks",
                          writer="pyiceberg")
    raw.refresh()
    with pytest.raises(guards.MissingCheckpointError, match=r"maps found for: \['clicks'\]"):
        guards.check_checkpoints(both, allow_missing=False)
    assert guards.check_checkpoints([(raw, ["clicks"])], allow_missing=False) == []
    assert len(guards.check_checkpoints(both, allow_missing=True)) == 1
    # raw_events_rejected holding only the quarantine's map (poison rows, no ordinary reject yet) is safe.
    iceberg.commit_pieces(rejected, [iceberg.Piece("s0", 1, 1, None)], stream="orders#quarantine",
                          writer="pyiceberg")
    rejected.refresh()
    assert rejected.metadata.current_snapshot() is not None
    assert guards.check_checkpoints([(rejected, ["orders", "orders#quarantine"])], allow_missing=False) == []
    with pytest.raises(guards.MissingCheckpointError, match=r"orders#quarantine"):
        guards.check_checkpoints([(rejected, ["orders"])], allow_missing=False)


def test_the_no_retries_property_is_checked_at_every_start_and_commit(stream: Stream, tmp_path: Path) -> None:
    """A table created (or changed later) with pyiceberg's retries on gets the property back: at the start of a
    consumer, and before a commit when someone changed it while the consumer ran."""
    settings = settings_for(tmp_path / "state", stream)
    raw, _ = _tables(settings)
    with raw.transaction() as txn:
        txn.set_properties({RETRIES: "4"})
    stream.put_events([make_event(i) for i in range(5)])
    asyncio.run(run_consumer_until(settings, lambda c: committed(c) >= 5, timeout=60))
    raw.refresh()
    assert raw.properties[RETRIES] == "0"
    with raw.transaction() as txn:
        txn.set_properties({RETRIES: "2"})
    iceberg.commit_pieces(raw, [iceberg.Piece("other", 1, 1, raw_rows("other", [1]))], stream=settings.stream_name,
                          writer="pyiceberg")
    raw.refresh()
    assert raw.properties[RETRIES] == "0"


OPS = st.lists(st.sampled_from(["orders", "clicks", "plain"]), min_size=1, max_size=7)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_expiry_keeps_every_streams_checkpoint(ops: list[str]) -> None:
    """Property 15: Processing maintains checkpoints. Whatever mix of commits of two streams and snapshots without
    a map (backfills, compactions) a table holds, expiring every old snapshot keeps each stream's map readable,
    the rows unchanged, and removes what no map needs."""
    with tempfile.TemporaryDirectory() as tmp:
        _, raw, _ = new_tables(Path(tmp))
        seq = 0
        for op in ops:
            seq += 1
            rows = raw_rows(op, [seq])
            if op == "plain":
                raw.append(iceberg.conform(rows, raw))
            else:
                iceberg.commit_pieces(raw, [iceberg.Piece(op, seq, seq, rows)], stream=op, writer="pyiceberg")
            raw.refresh()
        maps = {stream: checkpoints.read_map(raw.metadata, stream) for stream in ("orders", "clicks")}
        before = raw.scan().to_arrow().sort_by("sequence_number")
        count = len(raw.metadata.snapshots)
        expired = maintenance.expire(raw, retention_seconds=-1)
        raw.refresh()
        assert {stream: checkpoints.read_map(raw.metadata, stream) for stream in maps} == maps
        assert raw.scan().to_arrow().sort_by("sequence_number").equals(before)
        # Kept: the current snapshot back to the oldest of the streams' newest holders; the rest is gone.
        newest = {stream: max((n for n, op in enumerate(ops) if op == stream), default=None) for stream in maps}
        holders = [n for n in newest.values() if n is not None]
        keep = len(ops) - min(holders) if holders else 1
        assert len(raw.metadata.snapshots) == keep and expired == count - keep
