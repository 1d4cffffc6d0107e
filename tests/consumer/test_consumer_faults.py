"""Fault injection with real child processes: SIGKILL at random moments, lease takeover, a shard split."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
from eventpipe_consumer.leases import SHARD_END, SqlLeaseStore
from eventpipe_consumer.settings import ConsumerSettings

from tests.helpers.consumer_helpers import ChildConsumer, Stream, make_event, settings_for, start_child, table_rows


def _wait(condition: Callable[[], bool], timeout: float, what: str,
          children: Sequence[ChildConsumer] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(c.log_path.read_text(errors="replace")[-3000:] for c in children)
            raise TimeoutError(f"{what} within {timeout}s\n{logs}")
        time.sleep(0.2)


def _row_count(settings: ConsumerSettings) -> int:
    try:
        return table_rows(settings).num_rows
    except Exception:  # noqa: BLE001 (the table does not exist before the first consumer starts)
        return -1


def _assert_exactly(settings: ConsumerSettings, events: list[dict[str, Any]]) -> None:
    ids = table_rows(settings)["event_id"].to_pylist()
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicated events"
    assert sorted(ids) == sorted(e["event_id"] for e in events)


def _assert_quarantined_once(settings: ConsumerSettings, poison: list[dict[str, Any]]) -> None:
    rows = table_rows(settings, "raw_events_rejected")
    rows = rows.filter(pc.equal(rows["source"], "consumer"))
    ids = [json.loads(raw)["event_id"] for raw in rows["raw"].to_pylist()]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} events quarantined twice"
    assert sorted(ids) == sorted(e["event_id"] for e in poison)


def test_sigkill_at_random_moments_neither_loses_nor_duplicates(
        make_stream: Callable[[int], Stream], tmp_path: Path, children: list[ChildConsumer]) -> None:
    """Kills land before, during and after commits, also while a batch is bisected for its poison events (one
    in every 60 has a timestamp the table cannot hold): every good event lands once, every poison event is
    quarantined once."""
    stream = make_stream(2)
    settings = settings_for(tmp_path / "state", stream, consumer_commit_interval_seconds=0.3,
                            consumer_lease_duration_seconds=1.5, consumer_commit_max_records=300)
    rng = random.Random(20261128)
    # A bound on the producer far above what five kill cycles take even on a loaded machine (300 events/s):
    # it must still be writing when the last victim dies, whatever the machine's speed.
    limit = 200_000
    produced: list[dict[str, Any]] = []
    poison: list[dict[str, Any]] = []
    stop_producing = threading.Event()

    def produce() -> None:
        """Writes all the time the victims live, so every kill lands while there is work in flight."""
        while not stop_producing.is_set() and len(produced) < limit:
            batch = [make_event(i) for i in range(len(produced), len(produced) + 59)]
            bad = make_event(len(produced) + 59, timestamp="9999-12-31T23:30:00-05:00")
            stream.put_events([*batch[:30], bad, *batch[30:]])
            produced.extend(batch)
            poison.append(bad)
            time.sleep(0.2)

    producer = threading.Thread(target=produce)
    producer.start()
    kills = 0
    try:
        for cycle in range(5):
            child = start_child(settings.model_copy(update={"consumer_worker_id": f"victim-{cycle}"}),
                                tmp_path / f"consumer-{cycle}.log")
            children.append(child)
            # Kill only once this process is really working (leases taken, a commit made), at a random moment
            # within the next commit intervals: before, during or after a commit.
            _wait(lambda c=child: any(line.get("message") == "iceberg_commit" for line in c.log_lines()), 60,
                  "a commit by the victim", [child])
            time.sleep(rng.uniform(0.0, 1.0))
            child.kill()
            kills += 1
    finally:
        stop_producing.set()
        producer.join()
    assert kills == 5 and len(produced) < limit
    events = produced
    final = start_child(settings, tmp_path / "consumer-final.log")
    children.append(final)
    # The victims may have committed everything already: wait for the final consumer to be up (its leases taken,
    # so its SIGTERM handler is installed) before the rows can end the wait, or SIGTERM would find it importing.
    _wait(lambda: any(line.get("message") == "lease_taken" for line in final.log_lines()), 60,
          "the final consumer taking its leases", [final])
    _wait(lambda: _row_count(settings) >= len(events), 90, "all events committed", [final])
    time.sleep(1.0)  # one more commit interval: nothing more may arrive
    assert final.terminate() == 0
    _assert_exactly(settings, events)
    _assert_quarantined_once(settings, poison)


def test_two_consumers_four_shards_lease_takeover(make_stream: Callable[[int], Stream], tmp_path: Path,
                                                  children: list[ChildConsumer]) -> None:
    stream = make_stream(4)
    duration = 3.0
    base = settings_for(tmp_path / "state", stream, consumer_lease_duration_seconds=duration)
    a = start_child(base.model_copy(update={"consumer_worker_id": "worker-a"}), tmp_path / "a.log")
    b = start_child(base.model_copy(update={"consumer_worker_id": "worker-b"}), tmp_path / "b.log")
    children.extend([a, b])
    leases = SqlLeaseStore.from_dsn(base.resolved_lease_dsn(), base.resolved_lease_table(), base.stream_name)

    def owners() -> dict[str, int]:
        counts: dict[str, int] = {}
        now = time.time()
        for lease in leases.list_leases():
            if lease.held(now) and lease.owner is not None:
                counts[lease.owner] = counts.get(lease.owner, 0) + 1
        return counts

    _wait(lambda: owners() == {"worker-a": 2, "worker-b": 2}, 60, "two leases each", [a, b])
    events = [make_event(i) for i in range(800)]
    stream.put_events(events[:400])
    _wait(lambda: _row_count(settings=base) >= 400, 60, "first half committed", [a, b])
    a.kill()
    killed_at = time.monotonic()
    stream.put_events(events[400:])
    _wait(lambda: owners() == {"worker-b": 4}, 2 * duration + 5, "worker-b holds the four leases", [b])
    took = time.monotonic() - killed_at
    _wait(lambda: _row_count(base) >= 800, 60, "all events committed", [b])
    assert b.terminate() == 0
    _assert_exactly(base, events)
    assert took <= 2 * duration + 5


def test_shard_split_mid_run(stream: Stream, tmp_path: Path, children: list[ChildConsumer]) -> None:
    settings = settings_for(tmp_path / "state", stream)
    child = start_child(settings, tmp_path / "consumer.log")
    children.append(child)
    parent = stream.shard_ids()[0]
    before = [make_event(i) for i in range(300)]
    stream.put_events(before[:200])
    _wait(lambda: _row_count(settings) >= 200, 60, "events before the split", [child])
    stream.put_events(before[200:])  # still in the parent, maybe not read yet when it closes
    stream.client.split_shard(StreamName=stream.name, ShardToSplit=parent,
                              NewStartingHashKey=str(2 ** 127))
    stream.wait_active()
    after = [make_event(i) for i in range(300, 600)]
    stream.put_events(after)
    _wait(lambda: _row_count(settings) >= 600, 90, "events after the split", [child])
    assert child.terminate() == 0
    _assert_exactly(settings, before + after)

    leases = {lease.shard_id: lease for lease in SqlLeaseStore.from_dsn(
        settings.resolved_lease_dsn(), settings.resolved_lease_table(), settings.stream_name).list_leases()}
    assert leases[parent].checkpoint == SHARD_END
    kids = [lease for lease in leases.values() if lease.parents == (parent,)]
    assert len(kids) == 2
    log = [line for line in child.log_lines() if line.get("shard")]
    finished_at = next(i for i, line in enumerate(log)
                       if line["message"] == "shard_finished" and line["shard"] == parent)
    for kid in kids:
        taken_at = next(i for i, line in enumerate(log) if line["message"] == "lease_taken"
                        and line["shard"] == kid.shard_id)
        assert finished_at < taken_at, "a child shard was read before its parent reached SHARD_END"
    rows = table_rows(settings)
    assert rows.filter(pc.equal(rows["shard_id"], parent)).num_rows == 300
