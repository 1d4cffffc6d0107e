"""The consumer against real kinesalite and a real SQL catalog: flow, rejects, re-sends, audit, job store,
retries, graceful SIGTERM, and an S3 warehouse (moto server)."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from eventpipe_common.jobstore import JobStore
from eventpipe_common.logging import configure_logging
from eventpipe_consumer import checkpoints, iceberg
from eventpipe_consumer.leases import SqlLeaseStore
from eventpipe_consumer.retry import BatchFailedError, with_retries
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.consumer_helpers import (
    Stream,
    committed,
    encode,
    make_event,
    run_consumer_until,
    settings_for,
    start_child,
    table_rows,
)


def _audit_lines(log: io.StringIO) -> list[dict[str, Any]]:
    return [line for line in map(json.loads, log.getvalue().splitlines()) if line.get("message") == "iceberg_commit"]


def test_events_rejects_and_resends_flow_into_iceberg(stream: Stream, tmp_path: Path) -> None:
    """Property 42: Iceberg commits create audit logs. One JSON line per commit carries the snapshot id, the data
    files, the record count, the shards and their sequence ranges, and they match the table."""
    settings = settings_for(tmp_path / "state", stream, consumer_commit_max_records=150)
    jobs = JobStore.from_dsn(settings.resolved_job_store_dsn())
    jobs.create_job("job-1", received=300, accepted=300, rejected=0)
    jobs.create_job("job-2", received=20, accepted=20, rejected=0)
    events = [make_event(i) for i in range(300)]
    garbage = [b"{not json", b'{"event_type":"page_view"}', json.dumps(make_event(999), indent=1).encode()]
    stream.put([encode(e) for e in events[:150]] + garbage + [encode(e) for e in events[150:]])
    # Re-sends by a later request (job-2): same event ids, new sequence numbers.
    stream.put([encode(e | {"_job_id": "job-2"}) for e in events[:20]])
    log = io.StringIO()
    configure_logging("consumer", "INFO", stream=log)

    consumer = asyncio.run(run_consumer_until(
        settings, lambda c: committed(c) >= 301 and c.metrics.records_rejected._value.get() >= 2,
        jobs=jobs, configure=False))

    rows = table_rows(settings)
    pretty_printed = json.loads(garbage[2])["event_id"]  # re-encoded on one line, then accepted
    assert sorted(rows["event_id"].to_pylist()) == sorted([e["event_id"] for e in events] + [pretty_printed])
    rejected = table_rows(settings, "raw_events_rejected")
    assert sorted(rejected["raw"].to_pylist()) == sorted(g.decode() for g in garbage[:2])
    assert set(rejected["source"].to_pylist()) == {"consumer"}
    assert all(s.isdigit() for s in rejected["sequence_number"].to_pylist())
    duplicates = sum(s.value for m in consumer.metrics.duplicates.collect() for s in m.samples
                     if s.name.endswith("_total"))
    assert duplicates == 20
    # The pretty-printed record does not start with "_job_id" (ingest never publishes such a record): it counts
    # for no job. job-2's re-sends were dropped, and count for job-2 all the same.
    for job_id, count in (("job-1", 300), ("job-2", 20)):
        job = jobs.get(job_id)
        assert job is not None and (job.committed, job.state) == (count, "committed"), job

    audits = _audit_lines(log)
    raw_table = iceberg.open_catalog(settings.catalog_name, settings.resolved_catalog_properties()) \
        .load_table("shop.raw_events")
    snapshots = {s.snapshot_id: s for s in raw_table.metadata.snapshots}
    raw_audits = [a for a in audits if a["table"] == "raw_events"]
    assert raw_audits and sum(a["record_count"] for a in raw_audits) == 301
    for audit in raw_audits:
        snapshot = snapshots[audit["snapshot_id"]]
        assert snapshot.summary is not None and int(snapshot.summary["added-records"] or 0) == audit["record_count"]
        files = {task.file.file_path for task in raw_table.scan(snapshot_id=audit["snapshot_id"]).plan_files()}
        assert set(audit["data_files"]) <= files
        assert audit["shards"] == stream.shard_ids()
        first, last = audit["sequence_ranges"][stream.shard_ids()[0]]
        assert int(first) <= int(last)
        assert checkpoints.decode(snapshot.summary, stream.name) is not None
    assert [a for a in audits if a["table"] == "raw_events_rejected"]


def ingest_reject_record(line: int, raw: str, job_id: str) -> bytes:
    """A reject record as ingest publishes it (eventpipe_ingest.rejects)."""
    return json.dumps({"_reject": {"line": line, "raw": raw, "reasons": [
        {"field": "timestamp", "rule": "timestamp", "message": "not an RFC 3339 timestamp"}],
        "source": "ingest"}, "_job_id": job_id}, separators=(",", ":")).encode()


def test_ingest_reject_records_land_in_the_rejected_table_once(stream: Stream, tmp_path: Path) -> None:
    """Lines refused by ingest (reject records in the stream) end in raw_events_rejected with source "ingest",
    their line, reasons, job id and stream position, exactly once across a restart, and never in raw_events."""
    settings = settings_for(tmp_path / "state", stream)
    events = [make_event(i, job_id="job-x") for i in range(30)]
    rejects = [ingest_reject_record(n, f'{{"event_id":"bad-{n}","timestamp":"nope"}}', "job-x")
               for n in range(31, 36)]
    stream.put([encode(e) for e in events[:15]] + rejects + [encode(e) for e in events[15:]])

    def rejected_count(c: Any) -> float:
        return float(c.metrics.records_rejected._value.get())

    asyncio.run(run_consumer_until(settings, lambda c: committed(c) >= 30 and rejected_count(c) >= 5))
    more = [make_event(i, job_id="job-y") for i in range(100, 110)]
    stream.put([encode(e) for e in more] + [ingest_reject_record(1, "{late", "job-y")])
    asyncio.run(run_consumer_until(settings, lambda c: committed(c) >= 10 and rejected_count(c) >= 1))

    rows = table_rows(settings)
    assert sorted(rows["event_id"].to_pylist()) == sorted(e["event_id"] for e in events + more)
    assert not any(e.startswith("bad-") for e in rows["event_id"].to_pylist())
    rejected = table_rows(settings, "raw_events_rejected").to_pylist()
    assert sorted(r["raw"] for r in rejected) == sorted(
        [f'{{"event_id":"bad-{n}","timestamp":"nope"}}' for n in range(31, 36)] + ["{late"])
    for row in rejected:
        assert row["source"] == "ingest" and row["shard_id"] == stream.shard_ids()[0]
        assert row["sequence_number"].isdigit()
        assert json.loads(row["reasons"])[0]["rule"] == "timestamp"
    assert sorted((r["line"], r["job_id"]) for r in rejected) == sorted(
        [(n, "job-x") for n in range(31, 36)] + [(1, "job-y")])


@pytest.mark.parametrize("together", [False, True], ids=["separate-batches", "same-batch"])
def test_resends_across_requests_bring_every_job_to_committed(stream: Stream, tmp_path: Path,
                                                             together: bool) -> None:
    """A request (job B) re-sends events of an earlier request (job A): the consumer writes each event once but
    counts every event record for its job, so both jobs reach committed with committed == accepted, whether the
    re-sends are dropped by the dedupe window (a later batch) or by the core (in the same batch)."""
    settings = settings_for(tmp_path / "state", stream)
    jobs = JobStore.from_dsn(settings.resolved_job_store_dsn())
    first = [make_event(i, job_id="job-a") for i in range(20)]
    second = [e | {"_job_id": "job-b"} for e in first[10:]] + [make_event(i, job_id="job-b") for i in range(20, 30)]
    jobs.create_job("job-a", received=20, accepted=20, rejected=0)
    jobs.create_job("job-b", received=20, accepted=20, rejected=0)
    if together:
        stream.put_events(first + second)
        asyncio.run(run_consumer_until(settings, lambda c: committed(c) >= 30, jobs=jobs))
    else:
        # One running consumer (its dedupe window lives in memory): job B arrives once job A is committed.
        stream.put_events(first)
        states: list[tuple[str, int]] = []

        def second_request_then_done(consumer: Any) -> bool:
            job_a = jobs.get("job-a")
            if not states and job_a is not None and job_a.state == "committed":
                states.append((job_a.state, job_a.committed))
                stream.put_events(second)
            return bool(states) and committed(consumer) >= 30

        asyncio.run(run_consumer_until(settings, second_request_then_done, jobs=jobs))
        assert states == [("committed", 20)]
    rows = table_rows(settings)
    assert sorted(rows["event_id"].to_pylist()) == sorted(e["event_id"] for e in first + second[10:])
    for job_id in ("job-a", "job-b"):
        job = jobs.get(job_id)
        assert job is not None and (job.state, job.committed) == ("committed", 20), job


def test_restart_resumes_after_the_table_checkpoint(stream: Stream, tmp_path: Path) -> None:
    """Property 15 end to end: a second consumer (lease hint wiped) resumes from the snapshot's map."""
    settings = settings_for(tmp_path / "state", stream)
    first = [make_event(i) for i in range(50)]
    stream.put_events(first)
    asyncio.run(run_consumer_until(settings, lambda c: committed(c) >= 50))
    leases = SqlLeaseStore.from_dsn(settings.resolved_lease_dsn(), settings.resolved_lease_table(),
                                    settings.stream_name)
    with leases.engine.begin() as conn:  # the lease checkpoint is only a hint: wipe it
        conn.execute(leases.table.update().values(checkpoint=None))
    second = [make_event(i) for i in range(50, 80)]
    stream.put_events(second)
    asyncio.run(run_consumer_until(settings, lambda c: committed(c) >= 30))
    rows = table_rows(settings)
    assert sorted(rows["event_id"].to_pylist()) == sorted(e["event_id"] for e in first + second)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 6), st.integers(0, 4))
def test_property_16_retry_policy(failures: int, retries: int) -> None:
    """Property 16: Failed batches retry correctly. An action failing `failures` times is retried at most
    `retries` times with doubling waits; it succeeds once if it can, else the batch is marked failed."""
    calls: list[int] = []
    waits: list[float] = []

    def action() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise OSError(f"fault {len(calls)}")
        return "done"

    if failures <= retries:
        assert with_retries(action, retries=retries, base_delay=0.5, sleep=waits.append) == "done"
        assert len(calls) == failures + 1
    else:
        with pytest.raises(BatchFailedError) as info:
            with_retries(action, retries=retries, base_delay=0.5, sleep=waits.append)
        assert len(calls) == retries + 1
        assert info.value.details["attempts"] == retries + 1
    assert waits == [0.5 * 2 ** n for n in range(len(calls) - 1)]


def _block_partition(settings: Any, day: str) -> Path:
    """A real storage fault: a regular file where the partition's data directory must go (even root cannot
    create files under it)."""
    warehouse = Path(settings.resolved_catalog_properties()["warehouse"].removeprefix("file://"))
    blocker = warehouse / "shop" / "raw_events" / "data" / f"event_ts_day={day}"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"")
    return blocker


@pytest.mark.parametrize("faults", [2, 5])
def test_property_16_failed_commit_stops_the_shard(stream: Stream, tmp_path: Path, faults: int) -> None:
    """Property 16: Failed batches retry correctly. Up to 3 failed writes are retried and the batch lands once;
    a 4th failure marks the batch failed, stops the shard (nothing committed, checkpoint unmoved, the job not
    failed) and the data is committed once the fault is gone."""
    settings = settings_for(tmp_path / "state", stream, consumer_failed_shard_cooldown_seconds=30.0)
    events = [make_event(2 * i) for i in range(40)]  # all on 2026-11-27
    stream.put_events(events)
    (tmp_path / "state").mkdir(exist_ok=True)
    iceberg.ensure_tables(iceberg.open_catalog(settings.catalog_name, settings.resolved_catalog_properties()),
                          settings.namespace)
    blocker = _block_partition(settings, "2026-11-27")
    attempts: list[float] = []
    jobs = JobStore.from_dsn(settings.resolved_job_store_dsn())
    jobs.create_job("job-1", received=40, accepted=40, rejected=0)

    def heal_after_faults(delay: float) -> None:
        attempts.append(delay)
        if len(attempts) >= faults and blocker.exists():
            blocker.unlink()

    if faults <= settings.consumer_commit_retries:
        consumer = asyncio.run(run_consumer_until(settings, lambda c: committed(c) >= 40, jobs=jobs,
                                                  retry_sleep=heal_after_faults))
        assert consumer.metrics.failed_batches._value.get() == 0
        assert consumer.metrics.commit_failures._value.get() == faults
    else:
        consumer = asyncio.run(run_consumer_until(
            settings, lambda c: c.metrics.failed_batches._value.get() >= 1, jobs=jobs, retry_sleep=lambda _: None))
        assert consumer.metrics.commit_failures._value.get() == settings.consumer_commit_retries + 1
        assert table_rows(settings).num_rows == 0
        job = jobs.get("job-1")  # a transient failure never fails a job: its events land later
        assert job is not None and job.state == "accepted" and job.committed == 0
        assert consumer.metrics.stopped_shards._value.get() == 1 and not consumer.ready()[0]
        raw = iceberg.open_catalog(settings.catalog_name, settings.resolved_catalog_properties()) \
            .load_table("shop.raw_events")
        assert checkpoints.read_map(raw.metadata, stream.name) == {}
        blocker.unlink()
        asyncio.run(run_consumer_until(settings, lambda c: committed(c) >= 40, jobs=jobs))
    rows = table_rows(settings)
    assert sorted(rows["event_id"].to_pylist()) == sorted(e["event_id"] for e in events)
    job = jobs.get("job-1")
    assert job is not None and job.state == "committed" and job.committed == 40


def test_sigterm_commits_in_flight_and_releases_leases(stream: Stream, tmp_path: Path,
                                                      children: list[Any]) -> None:
    settings = settings_for(tmp_path / "state", stream, consumer_commit_interval_seconds=60.0)
    child = start_child(settings, tmp_path / "consumer.log")
    children.append(child)
    events = [make_event(i) for i in range(200)]
    stream.put_events(events)
    deadline = time.monotonic() + 60
    while not any(line.get("message") == "lease_taken" for line in child.log_lines()):
        assert time.monotonic() < deadline and child.proc.poll() is None, child.log_path.read_text()
        time.sleep(0.2)
    time.sleep(2.0)  # read, not committed: the commit interval is 60 s
    assert child.terminate() == 0, child.log_path.read_text()
    rows = table_rows(settings)
    assert sorted(rows["event_id"].to_pylist()) == sorted(e["event_id"] for e in events)
    leases = SqlLeaseStore.from_dsn(settings.resolved_lease_dsn(), settings.resolved_lease_table(),
                                    settings.stream_name)
    assert all(lease.owner is None for lease in leases.list_leases())
    assert any(line.get("message") == "consumer_stopped" for line in child.log_lines())


def test_s3_warehouse_on_moto(stream: Stream, tmp_path: Path, moto_endpoint: str) -> None:
    bucket = f"warehouse-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    catalog_properties = {
        "type": "sql", "uri": f"sqlite:///{tmp_path / 'catalog.db'}", "warehouse": f"s3://{bucket}/wh",
        "s3.endpoint": moto_endpoint, "s3.access-key-id": "testing", "s3.secret-access-key": "testing",
        "s3.region": "us-east-1", "s3.path-style-access": "true",
    }
    settings = settings_for(tmp_path / "state", stream, catalog_properties=catalog_properties)
    events = [make_event(i) for i in range(60)]
    stream.put_events(events)
    asyncio.run(run_consumer_until(settings, lambda c: committed(c) >= 60))
    rows = table_rows(settings)
    assert sorted(rows["event_id"].to_pylist()) == sorted(e["event_id"] for e in events)
    keys = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").list_objects_v2(
        Bucket=bucket, Prefix="wh/shop/raw_events/data/")
    assert any(item["Key"].endswith(".parquet") for item in keys.get("Contents", []))


def test_metrics_endpoint_serves_millis_behind_latest(stream: Stream, tmp_path: Path) -> None:
    import urllib.request

    from tests.helpers.servers import free_port

    port = free_port()
    settings = settings_for(tmp_path / "state", stream, consumer_metrics_port=port)
    stream.put_events([make_event(i) for i in range(10)])
    scraped: list[str] = []

    def scrape(consumer: Any) -> bool:
        if committed(consumer) < 10:
            return False
        scraped.append(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
        return True

    asyncio.run(run_consumer_until(settings, scrape, serve_metrics=True))
    text = scraped[0]
    assert f'eventpipe_consumer_millis_behind_latest{{shard="{stream.shard_ids()[0]}"}}' in text
    # The lag in seconds (base units), from the same scrape.
    shard = stream.shard_ids()[0]
    millis = next(float(line.split()[-1]) for line in text.splitlines()
                  if line.startswith(f'eventpipe_consumer_millis_behind_latest{{shard="{shard}"}}'))
    seconds = next(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith(f'eventpipe_consumer_lag_seconds{{shard="{shard}"}}'))
    # At least MillisBehindLatest: the lag also counts records read and not yet committed (kinesis.lag_seconds).
    assert seconds >= millis / 1000
    assert "eventpipe_consumer_records_committed_total 10.0" in text
    assert "eventpipe_consumer_commit_latency_seconds_bucket" in text



@pytest.mark.parametrize("stores", ["dynamodb-leases", "postgres-everything"])
def test_production_stores(stream: Stream, tmp_path: Path, stores: str, request: pytest.FixtureRequest) -> None:
    """The production paths: leases in DynamoDB (moto server), or catalog, leases and job store on PostgreSQL."""
    suffix = uuid.uuid4().hex[:8]
    overrides: dict[str, Any] = {"consumer_lease_table": f"leases_{suffix}"}
    if stores == "dynamodb-leases":
        overrides.update(consumer_lease_store="dynamodb",
                         consumer_dynamodb_endpoint_url=request.getfixturevalue("moto_endpoint"))
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        overrides.update(consumer_lease_dsn=dsn, job_store_dsn=dsn, catalog_name=f"cat_{suffix}",
                         catalog_properties={"type": "sql", "uri": dsn,
                                             "warehouse": (tmp_path / "warehouse").as_uri()})
    settings = settings_for(tmp_path / "state", stream, **overrides)
    jobs = JobStore.from_dsn(settings.resolved_job_store_dsn())
    job_id = f"job-{suffix}"
    jobs.create_job(job_id, received=40, accepted=40, rejected=0)
    events = [make_event(i, job_id=job_id) for i in range(40)]
    stream.put_events(events)
    consumer = asyncio.run(run_consumer_until(settings, lambda c: committed(c) >= 40, jobs=jobs))
    rows = table_rows(settings)
    assert sorted(rows["event_id"].to_pylist()) == sorted(e["event_id"] for e in events)
    job = jobs.get(job_id)
    assert job is not None and job.committed == 40
    leases = consumer.leases.list_leases()
    assert [lease.shard_id for lease in leases] == stream.shard_ids()
    assert all(lease.owner is None and lease.checkpoint for lease in leases), "released, with a hint"


@pytest.mark.parametrize("store", ["postgres", "dynamodb"])
def test_pipelines_sharing_one_lease_store_each_read_all_their_shards(
        make_stream: Callable[[int], Stream], tmp_path: Path, store: str, request: pytest.FixtureRequest) -> None:
    """Two pipelines (two streams with the same shard ids, two namespaces) run at once on ONE lease table of one
    PostgreSQL or one DynamoDB (moto server): each commits every event of its own shards, none of the other's."""
    overrides: dict[str, Any] = {"consumer_lease_table": f"shared_leases_{uuid.uuid4().hex[:8]}"}
    if store == "postgres":
        overrides["consumer_lease_dsn"] = request.getfixturevalue("postgres_dsn")
    else:
        overrides.update(consumer_lease_store="dynamodb",
                         consumer_dynamodb_endpoint_url=request.getfixturevalue("moto_endpoint"))
    streams = [make_stream(2), make_stream(2)]
    assert streams[0].shard_ids() == streams[1].shard_ids()
    sent: list[list[str]] = []
    all_settings = []
    for n, stream in enumerate(streams):
        events = [make_event(i, job_id=None) for i in range(60)]
        stream.put_events(events)
        sent.append(sorted(e["event_id"] for e in events))
        all_settings.append(settings_for(tmp_path / f"state-{n}", stream, namespace=f"pipeline{n}", **overrides))

    async def both() -> None:
        await asyncio.gather(*(run_consumer_until(s, lambda c: committed(c) >= 60, timeout=90)
                               for s in all_settings))

    asyncio.run(both())
    for n, settings_n in enumerate(all_settings):
        rows = table_rows(settings_n)
        assert sorted(rows["event_id"].to_pylist()) == sent[n]
        assert sorted(set(rows["shard_id"].to_pylist())) == streams[n].shard_ids()
