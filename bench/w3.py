"""Benchmark W3 (WORKLOAD.md): sustained load into a running local stack, end to end.

    python -m bench.w3 [--duration 60] [--rate 10000] [--commit-interval 5] [--shards 2]

Starts a fresh `eventpipe up` (kinesalite in memory, no transform loop: this measures ingest -> Iceberg) in a
temporary folder, POSTs batches of 500 shop events at the offered rate from this process (asyncio + httpx,
a few requests in flight) for the duration, then waits for the consumer to drain and reads the results from
the table itself:

- events/s committed: rows committed to raw_events during the load window / its length;
- freshness per event: the commit time of the snapshot that made the event visible (snapshot timestamp, read
  from the table's history and the job_id column of the data files each snapshot added) minus the time its
  202 arrived; p50/p95/p99 over every event;
- commits per minute and data files per commit (snapshot summaries);
- peak RSS (VmHWM) of each process of the stack and of the load generator.

Not a test: nothing is asserted. Results go to docs/benchmarks.md (W3) by hand, with the machine and versions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
from eventpipe_cli.catalog import load_table, settings_for
from eventpipe_cli.generator import GeneratorConfig, generate
from eventpipe_cli.ratelimit import TokenBucket
from eventpipe_cli.state import StatePaths, read_dev_key, read_json

from tests.helpers.servers import free_port

BATCH = 500


@dataclass
class Load:
    accepted_at: dict[str, float] = field(default_factory=dict)  # job id -> wall time of its 202
    accepted: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    events_accepted: int = 0
    started: float = 0.0
    finished: float = 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a process, in MiB; children of a process group are not included."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def offer_load(base: str, key: str, bodies: list[bytes], rate: float, duration: float,
                     concurrency: int) -> Load:
    load = Load()
    bucket = TokenBucket(rate, burst=float(BATCH * concurrency))
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=concurrency * 2)
    headers = {"X-API-Key": key, "Content-Type": "application/x-ndjson"}

    async def worker(client: httpx.AsyncClient) -> None:
        while (body := await queue.get()) is not None:
            for _ in range(20):
                response = await client.post(f"{base}/api/v1/ingest", content=body, headers=headers)
                load.statuses[response.status_code] += 1
                if response.status_code in (429, 503):
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                    continue
                if response.status_code == 202:
                    answer = response.json()
                    load.accepted_at[answer["job_id"]] = time.time()
                    load.accepted[answer["job_id"]] = answer["accepted"]
                    load.events_accepted += answer["accepted"]
                break

    async with httpx.AsyncClient(timeout=60) as client:
        workers = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        load.started = time.time()
        deadline = time.monotonic() + duration
        for body in bodies:
            if time.monotonic() >= deadline:
                break
            wait = bucket.wait_time(BATCH, time.monotonic())
            if wait > 0:
                await asyncio.sleep(wait)
            bucket.take(BATCH, time.monotonic())
            await queue.put(body)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
        load.finished = time.time()
    return load


def snapshot_visibility(state_dir: Path) -> tuple[list[dict[str, Any]], Counter[tuple[str, int]]]:
    """Every snapshot of raw_events (time, files added) and how many events of each job it made visible."""
    table = load_table(settings_for(state_dir), "raw_events")
    assert table is not None, "raw_events was not created"
    snapshots = []
    visible: Counter[tuple[str, int]] = Counter()
    for snapshot in table.metadata.snapshots:
        summary = snapshot.summary.additional_properties if snapshot.summary is not None else {}
        snapshots.append({"id": snapshot.snapshot_id, "ms": snapshot.timestamp_ms,
                          "files": int(summary.get("added-data-files", 0)),
                          "records": int(summary.get("added-records", 0))})
        for manifest in snapshot.manifests(table.io):
            if manifest.added_snapshot_id != snapshot.snapshot_id:
                continue
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                if entry.snapshot_id != snapshot.snapshot_id:
                    continue
                path = entry.data_file.file_path.removeprefix("file://")
                for job_id, n in Counter(pq.read_table(path, columns=["job_id"]).column("job_id")
                                         .to_pylist()).items():
                    visible[(str(job_id), snapshot.timestamp_ms)] += n
    return snapshots, visible


def committed_rows(state_dir: Path) -> int:
    table = load_table(settings_for(state_dir), "raw_events")
    snapshot = table.current_snapshot() if table is not None else None
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.additional_properties.get("total-records", 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.w3", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=10_000.0, help="Offered events per second.")
    parser.add_argument("--commit-interval", type=float, default=5.0)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4, help="Requests in flight.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args(argv)

    print(f"generating {int(args.rate * args.duration):,} events ...", file=sys.stderr)
    lines = [line.text for line in generate(GeneratorConfig(seed=3), int(args.rate * args.duration) + BATCH)]
    bodies = ["\n".join(lines[i:i + BATCH]).encode() for i in range(0, len(lines) - BATCH + 1, BATCH)]

    workdir = Path(tempfile.mkdtemp(prefix="eventpipe-w3-"))
    state = workdir / "state"
    ports = {"ingest": free_port(), "kinesis": free_port(), "metrics": free_port()}
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
           "AWS_DEFAULT_REGION": "us-east-1"}
    eventpipe = str(Path(sys.executable).parent / "eventpipe")
    with open(workdir / "up.log", "wb") as log:
        up = subprocess.Popen([eventpipe, "up", "--state-dir", str(state), "--ingest-port", str(ports["ingest"]),
                               "--kinesis-port", str(ports["kinesis"]), "--metrics-port", str(ports["metrics"]),
                               "--shards", str(args.shards), "--commit-interval", str(args.commit_interval),
                               "--no-transform", "--no-persist-stream", "--no-monitoring"],
                              stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        subprocess.run([eventpipe, "wait", "--state-dir", str(state), "--timeout", "120"], check=True, env=env)
        base = f"http://127.0.0.1:{ports['ingest']}"
        key = read_dev_key(StatePaths.at(state))
        print(f"offering {args.rate:,.0f} events/s for {args.duration:.0f}s ...", file=sys.stderr)
        load = asyncio.run(offer_load(base, key, bodies, args.rate, args.duration, args.concurrency))

        drain_deadline = time.monotonic() + 180
        while time.monotonic() < drain_deadline and committed_rows(state) < load.events_accepted:
            time.sleep(1)
        info = read_json(StatePaths.at(state).stack) or {}
        rss = {name: peak_rss_mb(c["pid"]) for name, c in info.get("components", {}).items()}
        rss["load generator"] = peak_rss_mb(os.getpid())
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=60)

    snapshots, visible = snapshot_visibility(state)
    freshness: list[float] = []
    for (job, ms), n in visible.items():
        if job in load.accepted_at:
            freshness.extend([ms / 1000 - load.accepted_at[job]] * n)
    window = [s for s in snapshots if load.started * 1000 <= s["ms"] <= load.finished * 1000]
    committed_in_window = sum(s["records"] for s in window)
    load_seconds = load.finished - load.started
    committed_total = sum(s["records"] for s in snapshots)
    last_commit = max((s["ms"] for s in snapshots), default=0) / 1000
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "offered_events_per_s": args.rate, "duration_s": round(load_seconds, 1),
        "commit_interval_s": args.commit_interval, "shards": args.shards, "batch": BATCH,
        "accepted_events": load.events_accepted,
        "accepted_events_per_s": round(load.events_accepted / load_seconds),
        "committed_events": committed_total,
        "committed_events_per_s_during_load": round(committed_in_window / load_seconds),
        "committed_events_per_s_until_drained": round(committed_total / max(1e-9, last_commit - load.started)),
        "freshness_s": {"p50": round(percentile(freshness, 50), 2), "p95": round(percentile(freshness, 95), 2),
                        "p99": round(percentile(freshness, 99), 2),
                        "mean": round(statistics.fmean(freshness), 2) if freshness else None},
        "bar_p95_s": args.commit_interval + 2,
        "commits_per_minute": round(len(window) / (load_seconds / 60), 1),
        "files_per_commit": round(statistics.fmean(s["files"] for s in snapshots), 2) if snapshots else None,
        "peak_rss_mb": {k: round(v, 1) if v is not None else None for k, v in rss.items()},
        "http_statuses": dict(load.statuses),
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
