"""Benchmark W1 (docs/workloads.md): events to Parquet, the project's job against its peers, side by side.

    python -m bench.w1 [--sizes 100000,1000000] [--runs 5] [--jobs eventpipe,duckdb,...] [--threads 1,default]
                       [--big-jobs eventpipe,duckdb,...]   # fewer jobs at N >= 1M (the slow Python peers)

Each measurement runs in a fresh process (bench/w1_run.py). The runs are interleaved: round r runs every job
(and thread setting) once before round r+1 starts, so a change in the machine's load hits all jobs alike.
Medians of --runs rounds, with the spread (min-max). Every job must agree with the project's job on the same
input form (NDJSON, or CSV for the `_csv` jobs) on output rows and reject counts, else the run fails. Prints
Markdown tables (for docs/benchmarks.md) and writes the raw results to ~/.cache/eventpipe/bench/w1-results.json
(bench/charts.py draws them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.w1_data import csv_file, input_file

# eventpipe: ndjson_file_to_parquet (what a user runs on a file); eventpipe_batch: process_batch + write.
PEERS = ["eventpipe", "eventpipe_batch", "pure_python", "orjson_pyarrow", "msgspec_pyarrow", "pyarrow_json", "polars",
         "duckdb"]
CSV_JOBS = ["eventpipe_csv", "duckdb_csv", "pyarrow_csv"]
LIMITS = ["read_only", "parse_simdjson", "write_only"]
ROOT = Path(__file__).resolve().parent.parent
# The packages each job runs on (their versions go into the table).
PACKAGES = {
    "eventpipe": ["eventpipe-core"], "eventpipe_batch": ["eventpipe-core"], "eventpipe_csv": ["eventpipe-core"],
    "pure_python": ["pyarrow"], "orjson_pyarrow": ["orjson", "pyarrow"], "msgspec_pyarrow": ["msgspec", "pyarrow"],
    "pyarrow_json": ["pyarrow"], "polars": ["polars"], "duckdb": ["duckdb"], "duckdb_csv": ["duckdb"],
    "pyarrow_csv": ["pyarrow", "orjson"], "read_only": [], "parse_simdjson": ["pysimdjson"],
    "write_only": ["pyarrow"],
}


def measure(job: str, n: int, threads: str, seed: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.w1_run", job, str(n), threads, str(seed)], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{job} n={n} threads={threads} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    system = f"{platform.system()} {platform.release()}"
    usable = len(os.sched_getaffinity(0))
    return f"{cpu}, {os.cpu_count()} cores ({usable} usable), {system}, Python {platform.python_version()}"


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "missing"


def job_versions(job: str) -> str:
    return ", ".join(f"{p} {version(p)}" for p in PACKAGES.get(job, []))


def versions() -> str:
    names = ["eventpipe-core", "pyarrow", "orjson", "msgspec", "polars", "duckdb", "pysimdjson"]
    return ", ".join(f"{name} {version(name)}" for name in names)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", default=",".join(PEERS + CSV_JOBS + LIMITS))
    parser.add_argument("--threads", default="1,default")
    parser.add_argument("--big-jobs", help="the jobs for sizes of 1,000,000 and more (default: --jobs)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get(
        "EVENTPIPE_CACHE", Path.home() / ".cache" / "eventpipe")) / "bench" / "w1-results.json")
    args = parser.parse_args()
    jobs = args.jobs.split(",")
    settings = args.threads.split(",")
    results: list[dict[str, Any]] = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"machine: {machine()}\nversions: {versions()}\nstarted {started}, load average {load_average()}\n")
    for n in [int(s) for s in args.sizes.split(",")]:
        path, csv_path = input_file(n, args.seed), csv_file(n, args.seed)
        chosen = args.big_jobs.split(",") if args.big_jobs and n >= 1_000_000 else jobs
        plan = [(job, threads) for threads in settings for job in chosen if job not in LIMITS or threads == "1"]
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in plan}
        for _ in range(args.runs):
            for job, threads in plan:
                runs[(job, threads)].append(measure(job, n, threads, args.seed))
        sizes = f"NDJSON {path.stat().st_size / 1e6:.0f} MB, CSV {csv_path.stat().st_size / 1e6:.0f} MB"
        print(f"### N = {n:,} ({sizes})\n")
        print("| job | versions | threads | median s | spread s | events/s | time / eventpipe | speed-up over "
              "1 thread | rows | rejects | peak RSS MB | peak / input |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for job, threads in plan:
            rs = runs[(job, threads)]
            seconds = [r["seconds"] for r in rs]
            row = dict(rs[0], median_seconds=statistics.median(seconds), runs=seconds,
                       peak_rss=max(r["peak_rss"] for r in rs), versions=job_versions(job))
            rows[(job, threads)] = row
            results.append(row)
        for job, threads in plan:
            row = rows[(job, threads)]
            ours = rows.get(("eventpipe_csv" if job.endswith("_csv") else "eventpipe", threads))
            agree = ours is None or (row["rows"], row["rejects"]) == (ours["rows"], ours["rejects"])
            if job not in LIMITS and not agree:
                assert ours is not None
                raise SystemExit(f"{job} disagrees: rows/rejects {row['rows']}/{row['rejects']} vs "
                                 f"eventpipe {ours['rows']}/{ours['rejects']}")
            med = row["median_seconds"]
            ratio = f"{med / ours['median_seconds']:.2f}x" if ours is not None else ""
            one = rows.get((job, "1"))
            speedup = f"{one['median_seconds'] / med:.2f}x" if one is not None and threads != "1" else ""
            row["time_over_eventpipe"] = med / ours["median_seconds"] if ours is not None else None
            print(f"| {job} | {row['versions']} | {threads} | {med:.3f} | {min(row['runs']):.3f}-"
                  f"{max(row['runs']):.3f} | {n / med:,.0f} | {ratio} | {speedup} | {row['rows']:,} | "
                  f"{row['rejects']:,} | {row['peak_rss'] / 1e6:.0f} | {row['peak_rss'] / row['input_bytes']:.2f} |",
                  flush=True)
        print()
    finished = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"finished {finished}, load average {load_average()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": shlex.join([Path(sys.executable).name, "-m", "bench.w1", *sys.argv[1:]]),
        "machine": machine(), "versions": versions(), "started": started, "finished": finished,
        "results": results}, indent=1))
    print(f"raw results: {args.out}")


if __name__ == "__main__":
    main()
