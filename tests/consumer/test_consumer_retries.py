"""A client's retry (same event_id, a new request, so a new Kinesis record) never makes a second row, also after
the consumer was killed in between or the shard was split: the dedupe window is seeded from the table
(recent_ids.py) when a shard is taken. Real kinesalite, real consumer processes, a real Iceberg SQL catalog."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from eventpipe_consumer import checkpoints, iceberg, recent_ids
from eventpipe_consumer.settings import ConsumerSettings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.consumer_helpers import (
    ChildConsumer,
    Stream,
    commit,
    encode,
    make_event,
    new_tables,
    raw_rows,
    settings_for,
    start_child,
    table_rows,
)


def _wait(condition: Callable[[], bool], timeout: float, what: str, child: ChildConsumer) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout}s\n{child.log_path.read_text(errors='replace')[-4000:]}")
        time.sleep(0.2)


def _committed_past(settings: ConsumerSettings, positions: dict[str, int]) -> bool:
    """The raw_events map has reached every shard's last sent sequence number."""
    try:
        catalog = iceberg.open_catalog(settings.catalog_name, settings.resolved_catalog_properties())
        table = catalog.load_table(f"{settings.namespace}.raw_events")
    except Exception:  # noqa: BLE001 (the table does not exist before the consumer has started)
        return False
    done = checkpoints.read_map(table.metadata, settings.stream_name)
    return all(done.get(shard, -1) >= seq for shard, seq in positions.items())


def _send(stream: Stream, events: list[dict[str, Any]]) -> dict[str, int]:
    """PutRecords with the user id as partition key (as ingest does); the last sequence number per shard."""
    answer: dict[str, int] = {}
    for start in range(0, len(events), 500):
        chunk = events[start:start + 500]
        result = stream.client.put_records(StreamName=stream.name, Records=[
            {"Data": encode(e), "PartitionKey": e["user_id"]} for e in chunk])
        assert result["FailedRecordCount"] == 0
        for entry in result["Records"]:
            answer[entry["ShardId"]] = max(answer.get(entry["ShardId"], -1), int(entry["SequenceNumber"]))
    return answer


@pytest.mark.parametrize("between", ["restart", "restart-and-split"])
def test_a_retried_event_is_one_row_after_a_kill(make_stream: Callable[[int], Stream], tmp_path: Path,
                                                 children: list[ChildConsumer], between: str) -> None:
    """Send, wait for the commit, SIGKILL the consumer, (split the shard,) send the same events again as new
    records (a client's retry), start a new consumer: every event_id is in raw_events once."""
    stream = make_stream(1)
    settings = settings_for(tmp_path / "state", stream)
    events = [make_event(i) for i in range(200)]
    first = start_child(settings, tmp_path / "first.log")
    children.append(first)
    sent = _send(stream, events)
    _wait(lambda: _committed_past(settings, sent), 90, "the first copies committed", first)
    first.kill()
    if between == "restart-and-split":
        parent = stream.shard_ids()[0]
        stream.client.split_shard(StreamName=stream.name, ShardToSplit=parent, NewStartingHashKey=str(2 ** 127))
        stream.wait_active()
    retried = _send(stream, events)
    if between == "restart-and-split":
        assert set(retried) == set(stream.shard_ids()) - {parent}, "the retries land in the children"
    second = start_child(settings, tmp_path / "second.log")
    children.append(second)
    _wait(lambda: _committed_past(settings, retried), 90, "the retries read and committed", second)
    assert second.terminate() == 0
    ids = table_rows(settings)["event_id"].to_pylist()
    assert sorted(ids) == sorted(e["event_id"] for e in events), f"{len(ids) - len(set(ids))} duplicated rows"


def test_without_the_durable_window_the_retry_is_a_second_row(stream: Stream, tmp_path: Path,
                                                              children: list[ChildConsumer]) -> None:
    """The same run with the window kept in memory only (consumer_dedupe_window_seconds=0): the test above
    would fail without recent_ids, so it is not passing by accident."""
    settings = settings_for(tmp_path / "state", stream, consumer_dedupe_window_seconds=0)
    events = [make_event(i) for i in range(50)]
    first = start_child(settings, tmp_path / "first.log")
    children.append(first)
    sent = _send(stream, events)
    _wait(lambda: _committed_past(settings, sent), 90, "the first copies committed", first)
    first.kill()
    retried = _send(stream, events)
    second = start_child(settings, tmp_path / "second.log")
    children.append(second)
    _wait(lambda: _committed_past(settings, retried), 90, "the retries read and committed", second)
    assert second.terminate() == 0
    assert table_rows(settings).num_rows == 2 * len(events)


ROWS = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 7200)), min_size=0, max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commits=st.lists(ROWS, min_size=1, max_size=4), shards=st.sets(st.sampled_from(["a", "b", "c"]), min_size=1),
       window=st.integers(1, 7200), capacity=st.integers(1, 60))
def test_recent_event_ids_are_the_newest_committed_ids_of_the_shards(
        commits: list[list[tuple[str, int]]], shards: set[str], window: int, capacity: int) -> None:
    """What seeds a taken shard's window: the ids committed from the given shards with ingested_at within the
    window, the newest `capacity` of them, oldest first; nothing from other shards or older rows."""
    now = datetime.now(UTC)  # the snapshots are stamped with the real clock: the rows' times follow it
    with tempfile.TemporaryDirectory() as tmp:
        _, raw, _ = new_tables(Path(tmp))
        expected: list[tuple[datetime, str]] = []
        next_seq: dict[str, int] = {}
        for n, rows in enumerate(commits):
            pieces = []
            for shard in sorted({s for s, _ in rows}):
                ages = [age for s, age in rows if s == shard]
                first = next_seq.get(shard, 1)
                seqs = list(range(first, first + len(ages)))
                next_seq[shard] = first + len(ages)
                table = raw_rows(shard, seqs)
                ingested = [now - timedelta(seconds=age) for age in ages]
                ids = [f"{shard}-{n}-{seq}" for seq in seqs]
                table = table.set_column(table.schema.get_field_index("ingested_at"), "ingested_at",
                                         pa.array(ingested, pa.timestamp("us", tz="UTC")))
                table = table.set_column(0, "event_id", pa.array(ids, pa.string()))
                pieces.append(iceberg.Piece(shard, seqs[0], seqs[-1], table))
                expected.extend((t, i) for t, i in zip(ingested, ids, strict=True)
                                if shard in shards and t >= now - timedelta(seconds=window))
            if pieces:
                commit(raw, pieces, writer="core")
        raw.refresh()
        got = recent_ids.recent_event_ids(raw, sorted(shards), now, window, capacity)
    when = dict((i, t) for t, i in expected)
    assert len(got) == min(capacity, len(expected)) and set(got) <= set(when)
    assert [when[i] for i in got] == sorted(when[i] for i in got), "oldest first"
    left_out = set(when) - set(got)
    if left_out:
        assert max(when[i] for i in left_out) <= min(when[i] for i in got), "the newest are kept"
