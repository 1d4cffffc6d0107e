"""Freshness that lasts (issue 22, item 6): W3's load for a long time, with table maintenance beside the writers.

    python -m bench.freshness [--duration 600] [--rate 10000] [--commit-interval 0.5] [--baseline 300]
    python -m bench.freshness --long          # the run of record: 1800 s

A fresh `eventpipe up` in a temporary folder (no transform loop, no monitoring; kinesalite keeps the stream on
disk, since 30 minutes of it do not fit in memory), W3's load generator (bench/w3.py: batches of 500 shop events
at a fixed offered rate, 4 requests in flight), and two processes beside it:

- bench/freshness_maintenance.py: the consumer's table maintenance on raw_events: compaction every
  `--maintenance-every` seconds, and in a loop of its own snapshot expiry that keeps the checkpoint chain and
  orphan removal every `--housekeeping-every` seconds;
- bench/freshness_watch.py: every consumer snapshot's commit time and per-job counts, as soon as it exists,
  and every `--stats-every` seconds the live data file count, metadata size, a DuckDB full scan's time and the
  load average.

Freshness of an event = commit time of the snapshot that made it visible minus the time its request got its 202
(as W3). Results per minute of the run (by the time of the 202) and the comparison the issue asks for: the
values of the first `--baseline` seconds against the last ones, as ratios. Everything the run wrote (JSON lines,
results.json) stays in `--out` (default: a new folder under bench/results/), for bench/charts_freshness.py.
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eventpipe_cli.generator import GeneratorConfig, generate
from eventpipe_cli.state import StatePaths, read_dev_key, read_json

from bench.w3 import BATCH, committed_rows, offer_load, peak_rss_mb, percentile
from tests.helpers.servers import free_port

REPO = Path(__file__).resolve().parent.parent

POOL_EVENTS = 300_000
EVENT_ID = re.compile(rb'"event_id":"[0-9a-f]{8}')


def bodies_forever(seed: int) -> Iterator[bytes]:
    """Request bodies of BATCH events without end: a pool generated once, its event ids made new on each pass
    (the first 8 hex digits of every UUID become the pass number; the other 24 keep them apart within a pass),
    so that no event is a re-send the consumer's dedupe window would drop. Holding 30 minutes of events at
    10,000 events/s in memory would take gigabytes."""
    config = GeneratorConfig(seed=seed, step=timedelta(milliseconds=1))
    lines = [line.text for line in generate(config, POOL_EVENTS)]
    pool = ["\n".join(lines[i:i + BATCH]).encode() for i in range(0, len(lines) - BATCH + 1, BATCH)]
    del lines
    rounds = 0
    while True:
        prefix = b'"event_id":"%08x' % (0x10000000 + rounds)
        for body in pool:
            yield EVENT_ID.sub(prefix, body)
        rounds += 1


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def versions() -> dict[str, str]:
    import duckdb
    import pyiceberg

    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return {"python": platform.python_version(), "pyiceberg": pyiceberg.__version__, "duckdb": duckdb.__version__,
            "node": node}


def git_head() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=False).stdout.strip()


def analyse(out: Path, accepted_at: dict[str, float], started: float, finished: float,
            baseline_s: float) -> dict[str, Any]:
    """Per-minute freshness, the stats over time, and the first-baseline-vs-end comparison."""
    snapshots = read_jsonl(out / "snapshots.jsonl")
    stats = read_jsonl(out / "stats.jsonl")
    passes = read_jsonl(out / "maintenance.jsonl")
    events: list[tuple[float, float, int]] = []  # (202 time, freshness, events)
    seen_ids: set[int] = set()
    for snap in snapshots:
        if snap["id"] in seen_ids:
            continue
        seen_ids.add(snap["id"])
        for job, n in snap["jobs"].items():
            if job in accepted_at:
                events.append((accepted_at[job], snap["ms"] / 1000 - accepted_at[job], int(n)))

    def pcts(rows: list[tuple[float, float, int]]) -> dict[str, float]:
        values = [f for _, f, n in rows for _ in range(n)]
        return {"p50": round(percentile(values, 50), 3), "p95": round(percentile(values, 95), 3),
                "p99": round(percentile(values, 99), 3), "events": len(values)}

    minutes = []
    for m in range(int((finished - started) // 60) + 1):
        rows = [e for e in events if started + 60 * m <= e[0] < started + 60 * (m + 1)]
        if rows:
            minutes.append({"minute": m} | pcts(rows))
    end_window = min(baseline_s, (finished - started) / 2)
    first = [e for e in events if e[0] < started + baseline_s]
    last = [e for e in events if e[0] >= finished - end_window]

    def at(t: float, key: str) -> float | None:
        """The median of `key` over the samples within 90 s of t (maintenance passes make counts saw-toothed)."""
        values = [s[key] for s in stats if abs(s["t"] - t) <= 90]
        return statistics.median(values) if values else None

    compare: dict[str, Any] = {}
    for key in ("live_data_files", "manifests", "snapshots", "metadata_json_bytes", "metadata_folder_bytes",
                "scan_s", "live_data_bytes", "scan_rows"):
        early, late = at(started + baseline_s, key), at(finished, key)
        compare[key] = {"at_baseline": early, "at_end": late,
                        "ratio": round(late / early, 2) if early and late is not None else None}
    for key in ("scan_s",):
        per_row = [s[key] / s["scan_rows"] * 1e9 for s in stats if s["scan_rows"]]
        compare["scan_ns_per_row"] = {"series": [round(v, 1) for v in per_row]}
    early_rows, late_rows = compare["scan_rows"]["at_baseline"], compare["scan_rows"]["at_end"]
    if early_rows and late_rows and compare["scan_s"]["at_baseline"] and compare["scan_s"]["at_end"]:
        early_ns = compare["scan_s"]["at_baseline"] / early_rows * 1e9
        late_ns = compare["scan_s"]["at_end"] / late_rows * 1e9
        compare["scan_ns_per_row"] |= {"at_baseline": round(early_ns, 1), "at_end": round(late_ns, 1),
                                       "ratio": round(late_ns / early_ns, 2)}
    first_f, last_f = pcts(first), pcts(last)
    compare["freshness"] = {"first": first_f, "last": last_f,
                            "p95_ratio": round(last_f["p95"] / first_f["p95"], 2) if first_f["events"] else None}
    errors = [p["error"] for p in passes if "error" in p]
    reports = [r for p in passes for r in p.get("reports", [])]
    by_kind: dict[str, Any] = {}
    for kind in sorted({p.get("kind", "all") for p in passes}):
        seconds = [p["seconds"] for p in passes if p.get("kind", "all") == kind]
        by_kind[kind] = {"passes": len(seconds), "seconds_median": statistics.median(seconds),
                         "seconds_max": max(seconds), "seconds": seconds}
    return {
        "freshness_s": pcts(events), "freshness_per_minute": minutes, "compare": compare,
        "maintenance": {"passes": len(passes), "failed_passes": len(errors), "errors": sorted(set(errors))[:5],
                        "seconds_median": statistics.median([p["seconds"] for p in passes]) if passes else None,
                        "files_removed": sum(r["files_removed"] for r in reports),
                        "files_added": sum(r["files_added"] for r in reports),
                        "snapshots_expired": sum(r["snapshots_expired"] for r in reports),
                        "orphans_deleted": sum(r["orphans_deleted"] for r in reports), "by_kind": by_kind},
        "consumer_commits": sum(1 for s in snapshots if s["maintenance"] is None and s["jobs"]),
        "loadavg": [s["loadavg"] for s in stats],
    }


def stop(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.freshness", description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="the run of record: 1800 s")
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--commit-interval", type=float, default=0.5)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--baseline", type=float, default=300.0, help="seconds of the run's first values")
    parser.add_argument("--maintenance-every", type=float, default=30.0)
    parser.add_argument("--housekeeping-every", type=float, default=10.0,
                        help="expiry and orphan removal in their own loop this often (0: in the compaction pass)")
    parser.add_argument("--min-age-seconds", type=float, default=20.0,
                        help="maintenance compacts files of the partition being written once this old")
    parser.add_argument("--retention", type=float, default=120.0, help="snapshot retention, seconds")
    parser.add_argument("--orphan-grace", type=float, default=120.0, help="orphan grace, seconds")
    parser.add_argument("--target-file-mb", type=int, default=128)
    parser.add_argument("--stats-every", type=float, default=60.0)
    parser.add_argument("--no-maintenance", action="store_true", help="the control: no maintenance process")
    parser.add_argument("--out", type=Path, help="results folder (default: bench/results/freshness-<time>)")
    parser.add_argument("--keep-state", action="store_true", help="keep the stack's folder (table, stream)")
    args = parser.parse_args(argv)
    # `kill PID` stops the run cleanly (the stack and the helpers are stopped by PID in `finally`); a run started
    # in the background of a shell ignores SIGINT.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    if args.long:
        args.duration = 1800.0
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or REPO / "bench" / "results" / f"freshness-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    print(f"results in {out}", file=sys.stderr)

    workdir = Path(tempfile.mkdtemp(prefix="eventpipe-fresh-"))
    state = workdir / "state"
    ports = {"ingest": free_port(), "kinesis": free_port(), "metrics": free_port()}
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
           "AWS_DEFAULT_REGION": "us-east-1"}
    bindir = Path(sys.executable).parent
    eventpipe = str(bindir / "eventpipe")
    python = str(Path(sys.executable))
    started_wall = time.time()
    code = git_head()  # at the start: the code the run's processes import
    helpers: list[subprocess.Popen[bytes]] = []
    with open(out / "up.log", "wb") as log:
        up = subprocess.Popen([eventpipe, "up", "--state-dir", str(state), "--ingest-port", str(ports["ingest"]),
                               "--kinesis-port", str(ports["kinesis"]), "--metrics-port", str(ports["metrics"]),
                               "--shards", str(args.shards), "--commit-interval", str(args.commit_interval),
                               "--no-transform", "--no-monitoring"],
                              stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        subprocess.run([eventpipe, "wait", "--state-dir", str(state), "--timeout", "120"], check=True, env=env)
        base = f"http://127.0.0.1:{ports['ingest']}"
        key = read_dev_key(StatePaths.at(state))
        info = read_json(StatePaths.at(state).stack) or {}
        side_env = {**env, "EVENTPIPE_STATE_DIR": str(state), "EVENTPIPE_NAMESPACE": "shop",
                    "EVENTPIPE_PIPELINE_NAME": "shop", "EVENTPIPE_STREAM_NAME": "eventpipe-shop",
                    "EVENTPIPE_MAINTENANCE_SNAPSHOT_RETENTION_SECONDS": str(args.retention),
                    "EVENTPIPE_MAINTENANCE_ORPHAN_GRACE_SECONDS": str(args.orphan_grace),
                    "EVENTPIPE_MAINTENANCE_TARGET_FILE_BYTES": str(args.target_file_mb * 1024 * 1024),
                    "EVENTPIPE_LOG_LEVEL": "WARNING"}
        with open(out / "watch.log", "wb") as wlog:
            helpers.append(subprocess.Popen(
                [python, "-m", "bench.freshness_watch", "--state-dir", str(state), "--out", str(out),
                 "--stats-every", str(args.stats_every)], cwd=REPO, env=side_env, stdout=wlog,
                stderr=subprocess.STDOUT))
        if not args.no_maintenance:
            with open(out / "maintenance.log", "wb") as mlog:
                helpers.append(subprocess.Popen(
                    [python, "-m", "bench.freshness_maintenance", "--out", str(out),
                     "--every", str(args.maintenance_every), "--min-age-seconds", str(args.min_age_seconds),
                     "--housekeeping-every", str(args.housekeeping_every)],
                    cwd=REPO, env=side_env, stdout=mlog, stderr=subprocess.STDOUT))
        print(f"offering {args.rate:,.0f} events/s for {args.duration:.0f} s ...", file=sys.stderr)
        load = asyncio.run(offer_load(base, key, bodies_forever(3), args.rate, args.duration, args.concurrency))
        drain_deadline = time.monotonic() + 300
        while time.monotonic() < drain_deadline and committed_rows(state) < load.events_accepted:
            time.sleep(2)
        time.sleep(max(5.0, args.stats_every / 4))  # the watcher sees the last snapshots
        rss = {name: peak_rss_mb(c["pid"]) for name, c in info.get("components", {}).items()}
        rss["load generator"] = peak_rss_mb(os.getpid())
    finally:
        for helper in helpers:
            stop(helper)
        stop(up)
    results = {
        "command": "python -m bench.freshness " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started_utc": datetime.fromtimestamp(started_wall, UTC).isoformat(timespec="seconds"),
        "git": code, "versions": versions(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "duration_s": round(load.finished - load.started, 1), "accepted_events": load.events_accepted,
        "accepted_events_per_s": round(load.events_accepted / (load.finished - load.started)),
        "committed_events": committed_rows(state), "http_statuses": dict(load.statuses),
        "peak_rss_mb": {k: round(v, 1) if v is not None else None for k, v in rss.items()},
        "load_started": load.started, "load_finished": load.finished,
    }
    results |= analyse(out, load.accepted_at, load.started, load.finished, args.baseline)
    (out / "accepted.json").write_text(json.dumps(load.accepted_at))
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    summary = {k: results[k] for k in ("duration_s", "accepted_events_per_s", "committed_events", "freshness_s",
                                       "compare", "maintenance")}
    print(json.dumps(summary, indent=2))
    if not args.keep_state:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
