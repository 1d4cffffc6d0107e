"""One W1 measurement in a fresh process: `python -m bench.w1_run JOB N THREADS SEED` prints one JSON line.

THREADS is "1" (single-threaded: every library limited to one thread) or "default" (each library's own
default; the project's job: every core the process may use). Jobs ending in `_csv` read the CSV form of the
input. The job's time covers reading the input file through closing the Parquet file; peak memory is the
process's peak RSS, also given above the RSS after imports (the libraries' own baseline).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    job, count, threads, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    if threads == "1":
        for var in ("POLARS_MAX_THREADS", "RAYON_NUM_THREADS", "OMP_NUM_THREADS", "ARROW_NUM_THREADS"):
            os.environ[var] = "1"
    import pyarrow as pa

    if threads == "1":
        pa.set_cpu_count(1)
        pa.set_io_thread_count(1)
    from bench.w1_data import csv_file, input_file

    if job == "polars":
        import polars  # noqa: F401
    elif job in ("duckdb", "duckdb_csv"):
        import duckdb  # noqa: F401
    elif job in ("eventpipe", "eventpipe_batch", "eventpipe_csv", "write_only"):
        import eventpipe_core  # noqa: F401
    elif job == "parse_simdjson":
        import simdjson  # noqa: F401
    elif job == "pyarrow_csv":
        import orjson  # noqa: F401
        import pyarrow.csv  # noqa: F401
    path = csv_file(count, seed) if job.endswith("_csv") else input_file(count, seed)
    baseline = _rss_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.parquet"
        if job == "write_only":
            from bench import w1_limits

            table = w1_limits.records_table(path)
            baseline = _rss_bytes()
            start = time.perf_counter()
            rows, rejects = w1_limits.write_only(table, out)
        else:
            start = time.perf_counter()
            rows, rejects = run(job, path, out, threads)
        seconds = time.perf_counter() - start
        size = out.stat().st_size if out.exists() else 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"job": job, "n": count, "threads": threads, "seconds": seconds, "rows": rows,
                      "rejects": rejects, "peak_rss": peak, "baseline_rss": baseline,
                      "input_bytes": path.stat().st_size, "output_bytes": size}))


def run(job: str, path: Path, out: Path, threads: str) -> tuple[int, int]:
    from bench import w1_limits, w1_peers

    jobs = {
        "pure_python": w1_peers.pure_python,
        "orjson_pyarrow": w1_peers.orjson_pyarrow,
        "msgspec_pyarrow": w1_peers.msgspec_pyarrow,
        "pyarrow_json": w1_peers.pyarrow_json,
        "polars": w1_peers.polars_job,
        "read_only": w1_limits.read_only,
        "parse_simdjson": w1_limits.parse_simdjson,
        "pyarrow_csv": w1_peers.pyarrow_csv,
    }
    limit = 1 if threads == "1" else None
    if job == "eventpipe":
        return w1_peers.eventpipe_job(path, out, limit)
    if job == "eventpipe_batch":
        return w1_peers.eventpipe_batch_job(path, out, limit)
    if job == "eventpipe_csv":
        return w1_peers.eventpipe_job(path, out, limit, fmt="csv")
    if job == "duckdb":
        return w1_peers.duckdb_job(path, out, limit)
    if job == "duckdb_csv":
        return w1_peers.duckdb_csv_job(path, out, limit)
    return jobs[job](path, out)


if __name__ == "__main__":
    main()
