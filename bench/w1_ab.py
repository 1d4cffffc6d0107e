"""A/B of two builds of the core on W1, one thread, interleaved: `python -m bench.w1_ab VENV_A VENV_B [ROUNDS]`.

Why: on a shared machine two `bench.w1` runs one after the other see different loads; here round r runs each
job with A's wheel, then with B's, each in a fresh process (`bench.w1_run`), so both see the same load. Reports
the job's wall time (from `bench.w1_run`) and the process's CPU time (user + sys, Python's start included).
Make VENV_A e.g. by copying `.venvs/bench` and installing another wheel into it.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys

JOBS = ("eventpipe", "eventpipe_batch")


def run_once(venv: str, job: str) -> tuple[float, float, int, int, int]:
    """(wall s, CPU s, rows, rejects, peak RSS MB) of one fresh-process run of `job` with `venv`'s wheel."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = ["nice", "-n", "5", f"{venv}/bin/python", "-m", "bench.w1_run", job, "1000000", "1", "1"]
    line = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    d = json.loads(line)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return d["seconds"], cpu, d["rows"], d["rejects"], d["peak_rss"] >> 20


def main() -> None:
    venv_a, venv_b = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    results: dict[tuple[str, str], list[tuple[float, float, int, int, int]]] = {}
    for r in range(rounds):
        for job in JOBS:
            for venv in (venv_a, venv_b):
                one = run_once(venv, job)
                results.setdefault((job, venv), []).append(one)
                print(r + 1, job, venv, *(round(x, 3) for x in one), flush=True)
    for (job, venv), runs in results.items():
        wall, cpu = [x[0] for x in runs], [x[1] for x in runs]
        print(f"{job:16} {venv:16} wall median {statistics.median(wall):.3f} ({min(wall):.3f}-{max(wall):.3f})"
              f"  CPU median {statistics.median(cpu):.3f} ({min(cpu):.3f}-{max(cpu):.3f})"
              f"  rows {sorted({x[2] for x in runs})} rejects {sorted({x[3] for x in runs})}"
              f"  peak RSS {max(x[4] for x in runs)} MB")


if __name__ == "__main__":
    main()
