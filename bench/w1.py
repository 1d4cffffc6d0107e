"""Benchmark W1 (docs/workloads.md): events to Parquet, the project's job against its peers, side by side.

    python -m bench.w1 [--sizes 100000,1000000] [--runs 3] [--jobs eventpipe,duckdb,...]

Each measurement runs in a fresh process (bench/w1_run.py); medians of --runs runs; every job must agree with
the project's job on output rows and reject counts, else the run fails. Prints Markdown tables (for
docs/benchmarks.md) and writes the raw results to ~/.cache/eventpipe/bench/w1-results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.w1_data import input_file

PEERS = ["eventpipe", "pure_python", "orjson_pyarrow", "msgspec_pyarrow", "pyarrow_json", "polars", "duckdb"]
LIMITS = ["read_only", "parse_simdjson", "write_only"]
ROOT = Path(__file__).resolve().parent.parent


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
    return f"{cpu}, {os.cpu_count()} cores, {system}, Python {platform.python_version()}"


def versions() -> str:
    names = ["eventpipe-core", "pyarrow", "orjson", "msgspec", "polars", "duckdb", "pysimdjson"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (missing)")
    return ", ".join(found)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", default=",".join(PEERS + LIMITS))
    parser.add_argument("--threads", default="1,default")
    args = parser.parse_args()
    jobs = args.jobs.split(",")
    results: list[dict[str, Any]] = []
    print(f"machine: {machine()}\nversions: {versions()}\n")
    for n in [int(s) for s in args.sizes.split(",")]:
        path = input_file(n, args.seed)
        size = path.stat().st_size
        print(f"### N = {n:,} ({size / 1e6:.0f} MB)\n")
        print("| job | threads | median s | events/s | time vs eventpipe | rows | rejects | peak RSS MB "
              "| above baseline MB |")
        print("|---|---|---|---|---|---|---|---|---|")
        ours: dict[str, dict[str, Any]] = {}
        for threads in args.threads.split(","):
            for job in jobs:
                if job in LIMITS and threads != "1":
                    continue
                runs = [measure(job, n, threads, args.seed) for _ in range(args.runs)]
                med = statistics.median(r["seconds"] for r in runs)
                row = dict(runs[0], median_seconds=med, runs=[r["seconds"] for r in runs],
                           peak_rss=max(r["peak_rss"] for r in runs))
                results.append(row)
                if job == "eventpipe":
                    ours[threads] = row
                if job in PEERS and job != "eventpipe" and threads in ours:
                    base = ours[threads]
                    if (row["rows"], row["rejects"]) != (base["rows"], base["rejects"]):
                        raise SystemExit(f"{job} disagrees: rows/rejects {row['rows']}/{row['rejects']} vs "
                                         f"eventpipe {base['rows']}/{base['rejects']}")
                ratio = med / ours[threads]["median_seconds"] if threads in ours else float("nan")
                print(f"| {job} | {threads} | {med:.3f} | {n / med:,.0f} | {ratio:.2f}x | {row['rows']:,} | "
                      f"{row['rejects']:,} | {row['peak_rss'] / 1e6:.0f} | "
                      f"{(row['peak_rss'] - row['baseline_rss']) / 1e6:.0f} |", flush=True)
        print()
    out = Path(os.environ.get("EVENTPIPE_CACHE", Path.home() / ".cache" / "eventpipe")) / "bench" / "w1-results.json"
    out.write_text(json.dumps({"machine": machine(), "versions": versions(), "results": results}, indent=1))
    print(f"raw results: {out}")


if __name__ == "__main__":
    main()
