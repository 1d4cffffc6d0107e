"""One consumer commit's wall time, in one process (issue 22 item 6): where a commit cycle's seconds go.

    python -m bench.commit_cycle [--commits 80] [--events 5000] [--variants before,after] [--rounds 3]

Each variant commits `--commits` times in a row to a fresh SQL catalog (SQLite, file warehouse) with
iceberg.commit_pieces, as the consumer does every interval: 4 shards' pieces of `--events` W1 events in all
(0.5 s at 10k events/s), the checkpoint map and per-job counts in the snapshot summary. Variants run
interleaved, one child process each, `--rounds` times. Reports the median and p95 commit seconds over the
commits after the first 10 (the table has 10-80 snapshots, as the maintained table keeps ~55).
`--profile` prints cProfile's top functions for one child instead. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
SHARDS = 4
SKIP = 10


def run(variant: str, commits: int, events: int, workdir: Path) -> dict[str, Any]:
    """Commit `commits` times in this (child) process; `before` puts pyiceberg's Transaction back."""
    import eventpipe_core
    from eventpipe_consumer import iceberg, jobcounts
    from eventpipe_consumer.records import DedupeWindow, StreamRecord, process_records

    from bench.w1_data import SCHEMA, input_file

    if variant == "before":  # pyiceberg's own Transaction: the metadata deep-copied on every read
        from pyiceberg.table import Transaction
        iceberg.transaction = Transaction
    lines = input_file(events).read_bytes().splitlines()[:events]
    schema = eventpipe_core.Schema(json.dumps(SCHEMA))
    now_us = int(time.time() * 1_000_000)
    segments: list[tuple[str, int, pa.Table]] = []
    for shard in range(SHARDS):
        records = [StreamRecord(f"shardId-{shard:012d}", str(10**20 + i), line, now_us)
                   for i, line in enumerate(lines[shard::SHARDS])]
        segment = process_records(records, schema, DedupeWindow(100_000))
        # As at W3's load: every event of a commit in today's partition (one data file per commit and shard).
        rows = segment.records
        assert rows is not None
        ts = rows["event_ts"]
        rows = rows.set_column(rows.schema.get_field_index("event_ts"), "event_ts",
                               pa.array([now_us] * len(ts), pa.int64()).cast(ts.type))
        segments.append((segment.shard_id, segment.received, rows))
    catalog = iceberg.open_catalog("bench", {"type": "sql", "uri": f"sqlite:///{workdir / 'catalog.db'}",
                                             "warehouse": (workdir / "warehouse").as_uri()})
    raw, _ = iceberg.ensure_tables(catalog, "bench", schema.promoted)
    seconds: list[float] = []
    for n in range(commits):
        base = 10**20 + n * 10**6
        pieces = [iceberg.Piece(shard_id, base, base + received, rows) for shard_id, received, rows in segments]
        # W3's jobs: one per 500-event request, each in one commit's summary (as the consumer's job counts).
        ranges_counts = {str(uuid.UUID(int=n * 1000 + j)): 500 for j in range(max(1, events // 500))}
        started = time.perf_counter()
        summary = jobcounts.encode(ranges_counts)

        def summary_for(_ranges: Mapping[str, tuple[int, int]], summary: dict[str, str] = summary) -> dict[str, str]:
            return summary

        iceberg.commit_pieces(raw, pieces, stream="bench", writer="core", summary_for=summary_for)
        seconds.append(time.perf_counter() - started)
    tail = sorted(seconds[SKIP:])
    return {"variant": variant, "commits": commits, "events": events,
            "median_s": statistics.median(tail), "p95_s": tail[int(0.95 * (len(tail) - 1))],
            "metadata_kb": os.path.getsize(raw.metadata_location.removeprefix("file://")) / 1024}


def _child(variant: str, commits: int, events: int, profile: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="eventpipe-commit-cycle-") as tmp:
        if not profile:
            return run(variant, commits, events, Path(tmp))
        prof = cProfile.Profile()
        out = prof.runcall(run, variant, commits, events, Path(tmp))
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.commit_cycle", description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=80)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--variants", default="before,after")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.commits, args.events, args.profile)))
        return 0
    results: dict[str, list[dict[str, Any]]] = {}
    for _ in range(1 if args.profile else args.rounds):
        for variant in args.variants.split(","):
            cmd = [sys.executable, "-m", "bench.commit_cycle", "--child", variant, "--commits", str(args.commits),
                   "--events", str(args.events)] + (["--profile"] if args.profile else [])
            out = subprocess.run(cmd, cwd=REPO, check=True, capture_output=not args.profile, text=True)
            if args.profile:
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["load1"] = os.getloadavg()[0]
            print(json.dumps(row), flush=True)
            results.setdefault(variant, []).append(row)
    for variant, rows in results.items():
        medians = sorted(r["median_s"] for r in rows)
        print(f"{variant}: median commit {statistics.median(medians):.3f} s "
              f"(rounds {', '.join(f'{m:.3f}' for m in medians)}), p95 "
              f"{statistics.median(r['p95_s'] for r in rows):.3f} s, metadata.json "
              f"{statistics.median(r['metadata_kb'] for r in rows):.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
