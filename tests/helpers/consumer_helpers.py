"""Helpers of the consumer tests: event factories, a stream of its own on kinesalite, settings for a temporary SQL
catalog, a consumer run in-process or as a `python -m eventpipe_consumer run` child, and raw_events rows built
without the Rust core."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from eventpipe_common.logging import configure_logging
from eventpipe_consumer import iceberg
from eventpipe_consumer.iceberg import open_catalog
from eventpipe_consumer.settings import ConsumerSettings
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

if TYPE_CHECKING:
    from eventpipe_consumer.consumer import Consumer

STREAM = "s"


def raw_rows(shard: str, sequences: list[int], day: int = 27) -> pa.Table:
    """raw_events rows built directly (no core needed): one event per sequence number."""
    ts = [dt.datetime(2026, 11, day, 13, 0, i % 60, tzinfo=dt.UTC) for i in range(len(sequences))]
    return pa.table({
        "event_id": [f"{shard}-{s}" for s in sequences],
        "event_type": ["page_view"] * len(sequences),
        "event_ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "event_date": pa.array([t.date() for t in ts], pa.date32()),
        "event_hour": pa.array([t.hour for t in ts], pa.int32()),
        "user_id": [None] * len(sequences),
        "session_id": [None] * len(sequences),
        "properties": ['{"page":"/"}'] * len(sequences),
        "schema_version": pa.array([1] * len(sequences), pa.int32()),
        "ingested_at": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "job_id": ["job-a" if s % 2 else "job-b" for s in sequences],
        "shard_id": [shard] * len(sequences),
        "sequence_number": [str(s) for s in sequences],
    })


def piece(shard: str, first: int, last: int) -> iceberg.Piece:
    return iceberg.Piece(shard, first, last, raw_rows(shard, list(range(first, last + 1))))


def new_tables(root: Path) -> tuple[Catalog, Table, Table]:
    catalog = iceberg.open_catalog("test", {"type": "sql", "uri": f"sqlite:///{root / 'catalog.db'}",
                                            "warehouse": (root / "warehouse").as_uri()})
    raw, rejected = iceberg.ensure_tables(catalog, "shop")
    return catalog, raw, rejected


def commit(table: Table, pieces: list[iceberg.Piece], writer: iceberg.Writer = "pyiceberg") -> iceberg.CommitOutcome:
    return iceberg.commit_pieces(table, pieces, stream=STREAM, writer=writer)


REPO = Path(__file__).resolve().parents[2]


def make_event(i: int, job_id: str | None = "job-1", **extra: Any) -> dict[str, Any]:
    """An event as ingest publishes it: "_job_id" first (the consumer reads it from the record's first bytes)."""
    event: dict[str, Any] = {} if job_id is None else {"_job_id": job_id}
    event |= {
        "event_id": f"evt-{i:08d}-{uuid.uuid4().hex[:8]}",
        "event_type": "page_view",
        "timestamp": f"2026-11-{27 + i % 2:02d}T13:45:12.123Z",
        "user_id": f"u_{i % 100}",
        "session_id": "s-1",
        "properties": {"page": f"/p/{i}"},
        "schema_version": 1,
    }
    event.update(extra)
    return event


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


@dataclass
class Stream:
    """A Kinesis stream of its own on the shared kinesalite."""

    endpoint: str
    name: str
    client: Any

    def shard_ids(self) -> list[str]:
        return [s["ShardId"] for s in self.client.list_shards(StreamName=self.name)["Shards"]]

    def put(self, datas: Sequence[bytes], partition_keys: Sequence[str] | None = None) -> list[str]:
        """PutRecords in chunks of 500, retrying failed entries; returns the sequence numbers."""
        sequences: list[str] = []
        for start in range(0, len(datas), 500):
            chunk = list(datas[start:start + 500])
            keys = list(partition_keys[start:start + 500]) if partition_keys else [uuid.uuid4().hex for _ in chunk]
            pending = list(range(len(chunk)))
            results: dict[int, str] = {}
            while pending:
                answer = self.client.put_records(StreamName=self.name, Records=[
                    {"Data": chunk[i], "PartitionKey": keys[i]} for i in pending])
                retry = []
                for i, entry in zip(pending, answer["Records"], strict=True):
                    if "SequenceNumber" in entry:
                        results[i] = entry["SequenceNumber"]
                    else:
                        retry.append(i)
                pending = retry
            sequences.extend(results[i] for i in range(len(chunk)))
        return sequences

    def put_events(self, events: Sequence[dict[str, Any]]) -> list[str]:
        return self.put([encode(e) for e in events])

    def wait_active(self) -> None:
        for _ in range(100):
            status = self.client.describe_stream_summary(StreamName=self.name)["StreamDescriptionSummary"]
            if status["StreamStatus"] == "ACTIVE":
                return
            time.sleep(0.1)
        raise TimeoutError(f"stream {self.name} not ACTIVE")


def settings_for(state_dir: Path, stream: Stream, **overrides: Any) -> ConsumerSettings:
    values: dict[str, Any] = {
        "state_dir": state_dir,
        "stream_name": stream.name,
        "kinesis_endpoint_url": stream.endpoint,
        "namespace": "shop",
        "consumer_commit_interval_seconds": 0.5,
        "consumer_metrics_port": 0,
        "consumer_lease_duration_seconds": 3.0,
        "consumer_shard_sync_seconds": 1.0,
        "consumer_poll_interval_seconds": 0.2,
        "consumer_idle_backoff_max_seconds": 0.5,
        "consumer_retry_base_seconds": 0.01,
        "consumer_worker_id": f"w-{uuid.uuid4().hex[:6]}",
    }
    values.update(overrides)
    state_dir.mkdir(parents=True, exist_ok=True)
    return ConsumerSettings(**values)


def settings_env(settings: ConsumerSettings) -> dict[str, str]:
    """The same settings as EVENTPIPE_* variables, for a child process."""
    env = dict(os.environ)
    for key, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        env[f"EVENTPIPE_{key.upper()}"] = json.dumps(value) if isinstance(value, dict) else str(value)
    return env


def table_rows(settings: ConsumerSettings, table: str = "raw_events") -> pa.Table:
    catalog = open_catalog(settings.catalog_name, settings.resolved_catalog_properties())
    return catalog.load_table(f"{settings.namespace}.{table}").scan().to_arrow()


def new_consumer(settings: ConsumerSettings, kinesis: Any, **kwargs: Any) -> Consumer:
    from eventpipe_consumer.app import lease_store
    from eventpipe_consumer.consumer import Consumer

    leases = lease_store(settings)
    catalog = open_catalog(settings.catalog_name, settings.resolved_catalog_properties())
    return Consumer(settings, kinesis, leases, catalog, **kwargs)


async def run_consumer_until(settings: ConsumerSettings, done: Callable[[Consumer], bool], timeout: float = 60.0,
                             configure: bool = True, serve_metrics: bool = False, **kwargs: Any) -> Consumer:
    """Run one in-process consumer until `done(consumer)` holds (checked every 0.2 s), then stop it gracefully."""
    from aiobotocore.session import get_session

    if configure:
        configure_logging("consumer", "INFO")
    async with get_session().create_client("kinesis", region_name="us-east-1",
                                           endpoint_url=settings.kinesis_endpoint_url) as kinesis:
        consumer = new_consumer(settings, kinesis, **kwargs)
        server = consumer.metrics.serve(settings.consumer_metrics_host, settings.consumer_metrics_port) \
            if serve_metrics else None
        task = asyncio.create_task(consumer.run())
        deadline = time.monotonic() + timeout
        try:
            while not done(consumer):
                if task.done():
                    task.result()
                    raise AssertionError("consumer stopped on its own")
                if time.monotonic() > deadline:
                    raise TimeoutError("consumer did not reach the expected state in time")
                await asyncio.sleep(0.2)
        finally:
            consumer.stop()
            await asyncio.wait_for(task, 60)
            if server is not None:
                server.shutdown()
        return consumer


def committed(consumer: Consumer) -> float:
    return consumer.metrics.records_committed._value.get()


@dataclass
class ChildConsumer:
    """`python -m eventpipe_consumer run` in its own process group, logs to a file."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    extra: list[str] = field(default_factory=list)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout)

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return lines


def start_child(settings: ConsumerSettings, log_path: Path) -> ChildConsumer:
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "eventpipe_consumer", "run"], env=settings_env(settings),
                                stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
    return ChildConsumer(proc, log_path)
