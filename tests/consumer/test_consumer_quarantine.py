"""Poison records and stopped shards (issue 14, items 2 and 3), on kinesalite, a real SQL catalog and PostgreSQL.

A poison event is one that passes the checks before the consumer but fails when it is written: it is written
straight to Kinesis here (ingest will refuse these at the door; the consumer must survive whatever gets past it).
"""

from __future__ import annotations

import asyncio
import io
import json
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from eventpipe_common.jobstore import JobState, JobStore
from eventpipe_common.logging import configure_logging
from eventpipe_consumer import checkpoints, iceberg, jobcounts
from eventpipe_consumer.consumer import Consumer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyiceberg.catalog import Catalog

from tests.helpers.consumer_helpers import (
    Stream,
    committed,
    encode,
    make_event,
    run_consumer_until,
    settings_for,
    table_rows,
)

# Timestamps the ingest checks of today let through and the table cannot hold: their UTC instant is outside
# Python's dates (year 1..9999), so partition values, Parquet statistics or the commit fail on them.
POISON_TIMESTAMPS = {
    "after_9999": "9999-12-31T23:30:00-05:00",  # 10000-01-01T04:30Z
    "before_0001": "0001-01-01T00:30:00+01:00",  # 0000-12-31T23:30Z
}


def poison_event(i: int, kind: str, job_id: str) -> dict[str, Any]:
    return make_event(i, job_id=job_id, timestamp=POISON_TIMESTAMPS[kind])


def _rejected_by_consumer(settings: Any) -> list[dict[str, Any]]:
    rows = table_rows(settings, "raw_events_rejected")
    rows = rows.filter(pc.equal(rows["source"], "consumer"))
    return rows.to_pylist()


def _job_store(postgres_dsn: str) -> JobStore:
    return JobStore.from_dsn(postgres_dsn)


def test_poison_events_are_quarantined_and_the_pipeline_goes_on(stream: Stream, tmp_path: Path,
                                                                 postgres_dsn: str) -> None:
    """The defect of issue 14: one event accepted with 202 made every later commit fail and stopped both shards.
    Now the poison events (also one packed among good lines) go to raw_events_rejected with source consumer, their
    reason and raw line; every other event lands once, every job ends committed, no shard stops, and events sent
    afterwards land too."""
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    jobs = _job_store(postgres_dsn)
    good = [make_event(i, job_id=job_id) for i in range(40)]
    poison = [poison_event(100, "after_9999", job_id), poison_event(101, "before_0001", job_id)]
    packed_good = [make_event(i, job_id=job_id) for i in range(200, 205)]
    packed_poison = poison_event(205, "after_9999", job_id)
    packed = b"\n".join(encode(e) for e in [*packed_good[:2], packed_poison, *packed_good[2:]])
    datas = [encode(e) for e in good[:20]] + [encode(poison[0])] + [encode(e) for e in good[20:]] \
        + [encode(poison[1]), packed]
    jobs.create_job(job_id, received=len(datas) + 5, accepted=len(good) + len(poison) + 6, rejected=0,
                    state=JobState.PUBLISHED)
    stream.put(datas)
    settings = settings_for(tmp_path / "state", stream, job_store_dsn=postgres_dsn)
    expected = good + packed_good
    consumer = asyncio.run(run_consumer_until(settings, lambda c: committed(c) >= len(expected), jobs=jobs))
    assert consumer.metrics.stopped_shards._value.get() == 0
    assert consumer.metrics.failed_batches._value.get() == 0
    rows = table_rows(settings)
    assert sorted(rows["event_id"].to_pylist()) == sorted(e["event_id"] for e in expected)
    rejected = _rejected_by_consumer(settings)
    poisoned = [*poison, packed_poison]
    assert sorted(json.loads(r["raw"])["event_id"] for r in rejected) == sorted(e["event_id"] for e in poisoned)
    for row in rejected:
        assert row["raw"] == encode(next(e for e in poisoned if e["event_id"] in row["raw"])).decode()
        # consumer_write today; once the core's validation refuses such timestamps (issue 14, item 1) the core's
        # rule: either way the event ends here, once, with a reason (the write path keeps Property 38's test).
        reasons = json.loads(row["reasons"])
        assert reasons and reasons[0]["rule"] and reasons[0]["message"]
        assert row["job_id"] == job_id and row["shard_id"] == stream.shard_ids()[0] and row["sequence_number"]
    job = jobs.get(job_id)
    assert job is not None and job.state == JobState.COMMITTED and job.committed == job.accepted

    later = [make_event(i, job_id=None) for i in range(300, 310)]
    stream.put_events(later)
    asyncio.run(run_consumer_until(settings, lambda c: committed(c) >= len(later), jobs=jobs))
    assert table_rows(settings).num_rows == len(expected) + len(later)
    assert len(_rejected_by_consumer(settings)) == len(poisoned), "quarantined once, also after a restart"


def _block_partition(settings: Any, day: str) -> Path:
    """A real storage fault: a regular file where the partition's data directory must go."""
    warehouse = Path(settings.resolved_catalog_properties()["warehouse"].removeprefix("file://"))
    blocker = warehouse / "shop" / "raw_events" / "data" / f"event_ts_day={day}"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"")
    return blocker


def test_a_storage_failure_stops_the_shard_loudly_and_a_restart_resumes_it(stream: Stream, tmp_path: Path,
                                                                           postgres_dsn: str) -> None:
    """Not content: no row is quarantined, the shard stops, readiness answers 503 naming it, the gauge counts it,
    the job stays published (not failed: its events land later), and a restart commits everything once."""
    from tests.helpers.servers import free_port

    port = free_port()
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    jobs = _job_store(postgres_dsn)
    events = [make_event(2 * i, job_id=job_id) for i in range(30)]  # all on 2026-11-27
    jobs.create_job(job_id, received=30, accepted=30, rejected=0, state=JobState.PUBLISHED)
    stream.put_events(events)
    settings = settings_for(tmp_path / "state", stream, job_store_dsn=postgres_dsn, consumer_metrics_port=port,
                            consumer_failed_shard_cooldown_seconds=600.0)
    iceberg.ensure_tables(iceberg.open_catalog(settings.catalog_name, settings.resolved_catalog_properties()),
                          settings.namespace)
    blocker = _block_partition(settings, "2026-11-27")
    seen: dict[str, Any] = {}

    def stopped(consumer: Consumer) -> bool:
        if consumer.metrics.stopped_shards._value.get() < 1:
            return False
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
        seen["status"] = answer.value.code
        seen["body"] = json.loads(answer.value.read())
        seen["metrics"] = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        return True

    asyncio.run(run_consumer_until(settings, stopped, jobs=jobs, serve_metrics=True, retry_sleep=lambda _: None))
    shard = stream.shard_ids()[0]
    assert seen["status"] == 503 and shard in seen["body"]["stopped_shards"]
    assert "eventpipe_consumer_stopped_shards 1.0" in seen["metrics"]
    assert table_rows(settings).num_rows == 0
    assert table_rows(settings, "raw_events_rejected").num_rows == 0, "a storage fault quarantines nothing"
    job = jobs.get(job_id)
    assert job is not None and job.state == JobState.PUBLISHED and job.committed == 0
    blocker.unlink()
    consumer = asyncio.run(run_consumer_until(settings, lambda c: committed(c) >= 30, jobs=jobs))
    assert consumer.ready() == (True, {})
    assert sorted(table_rows(settings)["event_id"].to_pylist()) == sorted(e["event_id"] for e in events)
    job = jobs.get(job_id)
    assert job is not None and job.state == JobState.COMMITTED and job.committed == 30


def test_counts_of_a_commit_whose_job_update_never_happened_are_reconciled_once(
        stream: Stream, tmp_path: Path, postgres_dsn: str) -> None:
    """A process that dies between the Iceberg commit and the job update: here a consumer that commits without
    a job store. The next consumer to start applies the counts from the snapshots, and only once."""
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    jobs = _job_store(postgres_dsn)
    jobs.create_job(job_id, received=25, accepted=25, rejected=0, state=JobState.PUBLISHED)
    stream.put_events([make_event(i, job_id=job_id) for i in range(25)])
    settings = settings_for(tmp_path / "state", stream, job_store_dsn=postgres_dsn)
    asyncio.run(run_consumer_until(settings, lambda c: committed(c) >= 25))
    job = jobs.get(job_id)
    assert job is not None and job.committed == 0
    for _ in range(2):  # a second start must not add them again
        asyncio.run(run_consumer_until(settings, lambda c: True, jobs=jobs))
        job = jobs.get(job_id)
        assert job is not None and job.state == JobState.COMMITTED and job.committed == 25


def test_a_commit_that_landed_although_the_client_saw_an_error_counts_once(
        stream: Stream, tmp_path: Path, postgres_dsn: str) -> None:
    """The catalog commits but the answer is lost (the connection drops after the commit). The SQL catalog has
    no way to cause that on demand, so its commit_table is wrapped: it commits for real, then raises. The retry
    finds nothing left to commit; the counts come from the snapshot, once."""
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    jobs = _job_store(postgres_dsn)
    jobs.create_job(job_id, received=20, accepted=20, rejected=0, state=JobState.PUBLISHED)
    events = [make_event(i, job_id=job_id) for i in range(20)]
    stream.put_events(events)
    settings = settings_for(tmp_path / "state", stream, job_store_dsn=postgres_dsn)
    lost: list[int] = []

    def lose_first_answer(consumer: Consumer) -> None:
        catalog: Catalog = consumer.catalog
        real = catalog.commit_table

        def commit_table(table: Any, requirements: Any, updates: Any) -> Any:
            response = real(table, requirements, updates)
            if not lost and table.name()[-1] == "raw_events":
                lost.append(1)
                raise ConnectionResetError("connection reset after the commit was made")
            return response

        catalog.commit_table = commit_table  # type: ignore[method-assign]

    def done(consumer: Consumer) -> bool:
        if not hasattr(consumer, "_wrapped"):
            lose_first_answer(consumer)
            consumer._wrapped = True  # type: ignore[attr-defined]
        job = jobs.get(job_id)
        return job is not None and job.committed >= 20

    consumer = asyncio.run(run_consumer_until(settings, done, jobs=jobs))
    assert lost == [1] and consumer.metrics.commit_failures._value.get() >= 1
    assert sorted(table_rows(settings)["event_id"].to_pylist()) == sorted(e["event_id"] for e in events)
    job = jobs.get(job_id)
    assert job is not None and job.state == JobState.COMMITTED and job.committed == 20
    raw = iceberg.open_catalog(settings.catalog_name, settings.resolved_catalog_properties()).load_table(
        "shop.raw_events")
    keys = [key for key, _ in jobcounts.pending(raw, stream.name)]
    assert jobs.applied_snapshots(keys) == set(keys)
    assert checkpoints.read_map(raw.metadata, stream.name)


def test_failed_job_moves_to_committed_when_its_events_all_land(postgres_dsn: str) -> None:
    """`failed` is final only when events cannot land: a job whose committed count reaches accepted is committed."""
    jobs = _job_store(postgres_dsn)
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    jobs.create_job(job_id, received=5, accepted=5, rejected=0)
    jobs.mark_failed(job_id, "publish timed out")
    assert jobs.record_committed({job_id: 3}, f"t:{job_id}:1")
    assert not jobs.record_committed({job_id: 3}, f"t:{job_id}:1"), "a snapshot's counts are applied once"
    job = jobs.get(job_id)
    assert job is not None and job.state == JobState.FAILED and job.committed == 3
    jobs.record_committed({job_id: 2}, f"t:{job_id}:2")
    job = jobs.get(job_id)
    assert job is not None and job.state == JobState.COMMITTED and job.committed == 5


def _log_capture() -> io.StringIO:
    log = io.StringIO()
    configure_logging("consumer", "INFO", stream=log)
    return log


FAILURE_MESSAGES = {"commit_attempt_failed", "batch_failed", "shard_stopped", "record_quarantined",
                    "batch_bisect", "shard_read_failed"}
SHARD = "shardId-000000000000"


# 10000-01-01T00:00Z: what the table cannot hold, set on processed rows directly so that the write path is
# tested whatever the core's validation lets through.
AFTER_9999_US = 253_402_300_800 * 1_000_000
AFTER_9999_DAY = 2_932_897


def with_poison_rows(rows: pa.Table, event_ids: set[str]) -> pa.Table:
    """The rows, with the event time of `event_ids` moved past year 9999 (event_ts and event_date)."""
    bad = [event_id in event_ids for event_id in rows["event_id"].to_pylist()]
    ts = pc.if_else(pa.array(bad), pa.scalar(AFTER_9999_US, pa.int64()),
                    rows["event_ts"].cast(pa.int64())).cast(rows["event_ts"].type)
    day = pc.if_else(pa.array(bad), pa.scalar(AFTER_9999_DAY, pa.int32()),
                     rows["event_date"].cast(pa.int32())).cast(rows["event_date"].type)
    rows = rows.set_column(rows.schema.get_field_index("event_ts"), "event_ts", ts)
    return rows.set_column(rows.schema.get_field_index("event_date"), "event_date", day)


async def _one_cycle(consumer: Consumer, datas: list[bytes], poison_ids: set[str],
                     stream_gone_endpoint: str | None) -> None:
    """What a reader and the committer do with one GetRecords answer, without the lease loop."""
    from eventpipe_consumer.consumer import OwnedShard
    from eventpipe_consumer.quarantine import process_guarded
    from eventpipe_consumer.records import DedupeWindow, StreamRecord

    consumer.raw_table, consumer.rejected_table = iceberg.ensure_tables(consumer.catalog, "shop")
    records = [StreamRecord(SHARD, str(10_000 + i), data, 1_764_000_000_000_000) for i, data in enumerate(datas)]
    owned = OwnedShard(SHARD, None, DedupeWindow(1000))
    consumer.owned[SHARD] = owned
    for segment in process_guarded(records, consumer.schema, owned.window, None, consumer._log_process_poison):
        if segment.records is not None:
            segment.records = with_poison_rows(segment.records, poison_ids)
        consumer._buffer(owned, segment)
    await consumer._commit_cycle()
    if stream_gone_endpoint is not None:
        from aiobotocore.session import get_session

        async with get_session().create_client("kinesis", region_name="us-east-1",
                                               endpoint_url=stream_gone_endpoint) as kinesis:
            consumer.kinesis = kinesis
            gone = OwnedShard(SHARD, 10_000, DedupeWindow(10))
            consumer.owned[SHARD] = gone
            await consumer._read_shard(gone)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(["good", "good", "poison"]), min_size=1, max_size=25),
       storage_fault=st.booleans(), stream_gone=st.booleans(), writer=st.sampled_from(["core", "pyiceberg"]))
def test_property_38_errors_are_logged_with_details(kinesis_endpoint: str, kinds: list[str], storage_fault: bool,
                                                    stream_gone: bool, writer: str) -> None:
    """Property 38: Errors are logged with details. Whatever fails in the consumer (a poison event while
    processing or writing, a storage fault that stops the shard, a shard that cannot be read), each failure line
    carries the component, the shard id and sequence number, the reason and the error."""
    from eventpipe_consumer.leases import SqlLeaseStore
    from eventpipe_consumer.settings import ConsumerSettings

    with tempfile.TemporaryDirectory(prefix="p38-") as tmp:
        root = Path(tmp)
        state = root / "state"
        state.mkdir()
        settings = ConsumerSettings(state_dir=state, stream_name=f"gone-{uuid.uuid4().hex[:8]}",
                                    namespace="shop", consumer_writer=writer, consumer_metrics_port=0,
                                    consumer_retry_base_seconds=0.0, consumer_worker_id="p38")
        catalog = iceberg.open_catalog(settings.catalog_name, settings.resolved_catalog_properties())
        log = _log_capture()
        consumer = Consumer(settings, None, SqlLeaseStore.from_dsn(settings.resolved_lease_dsn(),
                                                                   settings.resolved_lease_table(),
                                                                   settings.stream_name), catalog,
                            retry_sleep=lambda _: None)
        iceberg.ensure_tables(catalog, "shop")
        if storage_fault:
            _block_partition(settings, "2026-11-27")
            _block_partition(settings, "2026-11-28")
        events = [make_event(i) for i in range(len(kinds))]
        poison_ids = {e["event_id"] for e, kind in zip(events, kinds, strict=True) if kind == "poison"}
        asyncio.run(_one_cycle(consumer, [encode(e) for e in events], poison_ids,
                               kinesis_endpoint if stream_gone else None))
        lines = [json.loads(line) for line in log.getvalue().splitlines()]
    failures = [line for line in lines if line["message"] in FAILURE_MESSAGES]
    poison = sum(kind == "poison" for kind in kinds)
    expected = set()
    if poison and not storage_fault:
        expected.add("record_quarantined")
    if storage_fault and poison < len(kinds):
        expected |= {"commit_attempt_failed", "batch_failed", "shard_stopped"}
    if stream_gone:
        expected |= {"shard_read_failed", "shard_stopped"}
    assert expected <= {line["message"] for line in failures}
    for line in failures:
        assert line["component"] == "consumer", line
        assert line.get("shard") == SHARD, line
        assert line.get("sequence_number"), line
        assert line.get("reason"), line
        assert line.get("error"), line
        assert line["level"] in ("warning", "error"), line
