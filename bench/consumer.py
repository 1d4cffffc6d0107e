"""Consumer benchmark: events/s from Kinesis records to committed Iceberg, per consumer process.

    python -m bench.consumer [--events 1000000] [--rounds 3] [--stream-events 100000] [--variants core,...]
                             [--serial]

Part 1, the processing + commit path on PRE-FETCHED records (the stream is not the bottleneck): W1 lines
(bench/w1_data.py, with its re-sends, invalid and non-JSON lines) become Kinesis records of 4 shards in
GetRecords-sized chunks of 10,000; one child process per variant and round runs exactly the consumer's code
path (records.process_records per chunk: one `eventpipe_core.consume_batch` call; a commit every 50,000 records
through iceberg.commit_pieces with the checkpoint map, rejects to raw_events_rejected) on a fresh SQL catalog with
a file warehouse; as in the consumer, processing goes on in one thread while the previous commit runs in another.
Variants, side by side in one run: the Rust core's Parquet writer (`core`, the default) and pyiceberg's own writer
(`pyiceberg`, what table.append uses), one event per record or packed (`core-packed`), the packed path as it
was before `consume_batch` (`core-packed-before`), and the packed path with the commit's files written as before
`write_iceberg_parquet_groups` (`core-packed-take`: sort and take per partition in Python, one call per file).
Reports events/s (valid events committed / wall time), records/s, median and p95 commit latency, files per
commit, peak RSS (ru_maxrss of the child) and events per CPU-second of the child (both threads: events/s per
core). Medians over rounds, with the spread.

Part 2, END TO END from a pre-filled kinesalite stream (4 shards): the real consumer (`Consumer.run`) until every
valid event is committed. kinesalite (a JavaScript emulator) serves GetRecords far slower than Kinesis, so this
number is the emulator's ceiling, reported for completeness.
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARDS = 4
CHUNK = 10_000
COMMIT_EVERY = 50_000
MAX_BUFFERED = 200_000  # the consumer's per-shard read-ahead bound, summed
# Variants: who writes the Parquet files, and whether each Kinesis record holds one event or, as ingest packs
# them by default, PACKED_LINES events (NDJSON lines; 500-event requests over 4 shards give ~125 per record).
# "core-packed-before" runs the record path the consumer had before `eventpipe_core.consume_batch` (split, join,
# lineage and window in Python around `process_batch`: tests/helpers/consumer_reference.py), for a before/after
# in one run.
# "core-packed-take" runs the commit path before `write_iceberg_parquet_groups` (rows sorted and taken per day
# partition in Python, one core call per file: tests/helpers/consumer_reference.py), the same records path.
VARIANTS = {"core": ("core", 0), "pyiceberg": ("pyiceberg", 0), "core-packed": ("core", 125),
            "core-packed-before": ("core", 125), "core-packed-take": ("core", 125)}


def _records(count: int, pack: int = 0) -> list[list[Any]]:
    """W1 lines as per-shard lists of GetRecords chunks (StreamRecord), sequence numbers increasing per shard;
    with `pack`, each record holds `pack` consecutive lines of its shard joined by newlines (as ingest packs)."""
    from eventpipe_consumer.records import StreamRecord

    from bench.w1_data import input_file

    data = input_file(count).read_bytes().splitlines()
    now_us = int(time.time() * 1_000_000)
    per_shard_lines: list[list[bytes]] = [data[shard::SHARDS] for shard in range(SHARDS)]
    per_shard: list[list[Any]] = []
    for shard, shard_lines in enumerate(per_shard_lines):
        payloads = ([b"\n".join(shard_lines[i:i + pack]) for i in range(0, len(shard_lines), pack)] if pack
                    else shard_lines)
        per_shard.append([StreamRecord(f"shardId-{shard:012d}", str(10**20 + i), payload, now_us)
                          for i, payload in enumerate(payloads)])
    chunk = max(1, CHUNK // max(pack, 1))  # about CHUNK events per GetRecords answer either way
    chunks: list[list[Any]] = []
    for start in range(0, max(len(s) for s in per_shard), chunk):
        for shard_records in per_shard:
            if shard_records[start:start + chunk]:
                chunks.append(shard_records[start:start + chunk])
    return chunks


def run_variant(variant: str, count: int, workdir: Path, serial: bool = False) -> dict[str, Any]:
    """One round in this (child) process: process + commit `count` W1 records. `serial`: processing waits while
    a commit runs, so that every commit carries the same events whatever the variant (otherwise a faster commit
    path makes more, smaller commits: the fixed cost per commit then weighs more per event)."""
    writer, pack = VARIANTS[variant]
    import eventpipe_core
    from eventpipe_common.runtime import tune_gc
    from eventpipe_consumer import iceberg
    from eventpipe_consumer.records import DedupeWindow, process_records, rejects_table

    if variant.endswith("-before"):
        from tests.helpers.consumer_reference import PyDedupeWindow as DedupeWindow  # type: ignore[assignment]
        from tests.helpers.consumer_reference import process_records  # type: ignore[assignment]

    if variant.endswith("-take"):
        from tests.helpers.consumer_reference import write_data_files_per_partition

        iceberg.write_data_files = lambda table, rows, writer: write_data_files_per_partition(  # type: ignore[assignment]
            table, rows)

    from bench.w1_data import SCHEMA

    chunks = _records(count, pack)
    kinesis_records = sum(len(c) for c in chunks)
    schema = eventpipe_core.Schema(json.dumps(SCHEMA))
    catalog = iceberg.open_catalog("bench", {"type": "sql", "uri": f"sqlite:///{workdir / 'catalog.db'}",
                                             "warehouse": (workdir / "warehouse").as_uri()})
    raw, rejected = iceberg.ensure_tables(catalog, "bench", schema.promoted)
    tune_gc()  # as the consumer process does once started (eventpipe_consumer.app.run_consumer)
    windows: dict[str, DedupeWindow] = {}
    latencies: list[float] = []
    files: list[int] = []
    totals = {"committed": 0, "rejected": 0}
    buffered: list[Any] = []
    pending = [0]
    committing = [False]
    lock = threading.Condition()
    finished = threading.Event()

    def commit(segments: list[Any]) -> None:
        started = time.perf_counter()
        if any(seg.rejects for seg in segments):
            out = iceberg.commit_pieces(rejected, [iceberg.Piece(
                s.shard_id, s.first_sequence, s.last_sequence, rejects_table(s.rejects) if s.rejects else None)
                for s in segments], stream="bench", writer=writer)  # type: ignore[arg-type]
            totals["rejected"] += out.record_count
        out = iceberg.commit_pieces(raw, [iceberg.Piece(s.shard_id, s.first_sequence, s.last_sequence, s.records)
                                          for s in segments], stream="bench", writer=writer)  # type: ignore[arg-type]
        latencies.append(time.perf_counter() - started)
        files.append(len(out.data_files))
        totals["committed"] += out.record_count

    def committer() -> None:
        """Like the consumer's commit task: takes what is buffered once there is enough, while reading goes on."""
        nonlocal buffered
        while True:
            with lock:
                lock.wait_for(lambda: pending[0] >= COMMIT_EVERY or finished.is_set())
                segments, buffered = buffered, []
                pending[0] = 0
                committing[0] = bool(segments)
                lock.notify_all()
            if segments:
                commit(segments)
                with lock:
                    committing[0] = False
                    lock.notify_all()
            elif finished.is_set():
                return

    thread = threading.Thread(target=committer)
    cpu_started = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    thread.start()
    for chunk in chunks:
        window = windows.setdefault(chunk[0].shard_id, DedupeWindow(100_000))
        segment = process_records(chunk, schema, window)
        with lock:
            lock.wait_for(lambda: pending[0] < MAX_BUFFERED)
            buffered.append(segment)
            pending[0] += segment.events  # the consumer's thresholds count events
            lock.notify_all()
            if serial:
                lock.wait_for(lambda: pending[0] < COMMIT_EVERY and not committing[0])
    with lock:
        finished.set()
        lock.notify_all()
    thread.join()
    seconds = time.perf_counter() - started
    cpu_ended = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = (cpu_ended.ru_utime - cpu_started.ru_utime) + (cpu_ended.ru_stime - cpu_started.ru_stime)
    committed, rejected_count = totals["committed"], totals["rejected"]
    return {
        "variant": variant, "writer": writer, "records": count, "kinesis_records": kinesis_records,
        "committed": committed, "rejected": rejected_count,
        "seconds": seconds, "events_per_s": committed / seconds, "records_per_s": count / seconds,
        # CPU seconds of both threads (processing + commit): events per CPU-second is events/s per core, which
        # a machine shared with other work does not shift the way it shifts wall time.
        "cpu_seconds": cpu_seconds, "events_per_cpu_s": committed / cpu_seconds,
        "commit_p50_s": statistics.median(latencies),
        "commit_p95_s": sorted(latencies)[int(0.95 * (len(latencies) - 1))],
        "commits": len(latencies), "files_per_commit": statistics.median(files),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(variant: str, count: int, serial: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="eventpipe-bench-consumer-") as tmp:
        out = subprocess.run([sys.executable, "-m", "bench.consumer", "--child", variant, "--events", str(count),
                              "--workdir", tmp, *(["--serial"] if serial else [])],
                             cwd=REPO, check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _records_read(consumer: Any) -> float:
    return sum(sample.value for metric in consumer.metrics.records_read.collect() for sample in metric.samples
               if sample.name.endswith("_total"))


async def _end_to_end(count: int) -> dict[str, Any]:
    """The real consumer on a pre-filled 4-shard kinesalite stream."""
    import boto3
    from aiobotocore.session import get_session
    from eventpipe_consumer.consumer import Consumer
    from eventpipe_consumer.iceberg import open_catalog
    from eventpipe_consumer.leases import SqlLeaseStore
    from eventpipe_consumer.settings import ConsumerSettings

    from bench.w1_data import SCHEMA, lines
    from tests.helpers.servers import start_kinesalite

    server = start_kinesalite()
    endpoint = f"http://127.0.0.1:{server.port}"
    try:
        client = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="x")
        client.create_stream(StreamName="bench", ShardCount=SHARDS)
        data = [line.encode() for line in lines(count)]
        fill_started = time.perf_counter()
        for start in range(0, len(data), 500):
            batch = data[start:start + 500]
            client.put_records(StreamName="bench", Records=[
                {"Data": d, "PartitionKey": str(start + i)} for i, d in enumerate(batch)])
        fill_seconds = time.perf_counter() - fill_started
        with tempfile.TemporaryDirectory(prefix="eventpipe-bench-e2e-") as tmp:
            schema_path = Path(tmp) / "schema.json"
            schema_path.write_text(json.dumps(SCHEMA))
            settings = ConsumerSettings(state_dir=Path(tmp), stream_name="bench", kinesis_endpoint_url=endpoint,
                                        schema_path=schema_path, consumer_metrics_port=0,
                                        consumer_shard_sync_seconds=1.0, consumer_lease_duration_seconds=5.0)
            session = get_session()
            async with session.create_client("kinesis", region_name="us-east-1", endpoint_url=endpoint,
                                             aws_access_key_id="x", aws_secret_access_key="x") as kinesis:
                consumer = Consumer(settings, kinesis,
                                    SqlLeaseStore.from_dsn(settings.resolved_lease_dsn(), "leases", "bench"),
                                    open_catalog("bench", settings.resolved_catalog_properties()))
                started = time.perf_counter()
                task = asyncio.create_task(consumer.run())
                while _records_read(consumer) < count:
                    await asyncio.sleep(0.2)
                consumer.stop()
                await task
                seconds = time.perf_counter() - started
                committed = consumer.metrics.records_committed._value.get()
        return {"records": count, "committed": committed, "seconds": seconds, "events_per_s": committed / seconds,
                "fill_seconds": fill_seconds,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stream-events", type=int, default=100_000)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of: " + ", ".join(VARIANTS))
    parser.add_argument("--serial", action="store_true",
                        help="processing waits for each commit: the same commits (50,000 events) in every variant")
    parser.add_argument("--child")
    parser.add_argument("--workdir")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_variant(args.child, args.events, Path(args.workdir), args.serial)))
        return 0
    import eventpipe_core
    import pyiceberg

    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {sorted(unknown)}")
    results: dict[str, list[dict[str, Any]]] = {variant: [] for variant in variants}
    for round_no in range(args.rounds):
        order = variants if round_no % 2 == 0 else list(reversed(variants))
        for variant in order:
            result = _child(variant, args.events, args.serial)
            results[variant].append(result)
            print(json.dumps({"round": round_no, **result}), file=sys.stderr)
    summary = {}
    for variant, rounds in results.items():
        summary[variant] = {key: statistics.median(r[key] for r in rounds)
                            for key in ("events_per_s", "events_per_cpu_s", "records_per_s", "commit_p50_s",
                                        "commit_p95_s", "files_per_commit", "peak_rss_mb", "seconds", "cpu_seconds",
                                        "commits")}
        summary[variant]["events_per_s_spread"] = [min(r["events_per_s"] for r in rounds),
                                                   max(r["events_per_s"] for r in rounds)]
        summary[variant]["events_per_cpu_s_spread"] = [min(r["events_per_cpu_s"] for r in rounds),
                                                       max(r["events_per_cpu_s"] for r in rounds)]
        for key in ("committed", "rejected", "kinesis_records"):
            summary[variant][key] = rounds[0][key]
    e2e = asyncio.run(_end_to_end(args.stream_events)) if args.stream_events else None
    print(json.dumps({"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                  "eventpipe_core": eventpipe_core.__version__,
                                  "pyiceberg": pyiceberg.__version__},
                      "events": args.events, "rounds": args.rounds, "serial": args.serial, "prefetched": summary,
                      "kinesalite": e2e},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
