"""Cost of quarantining poison rows: the bisection of a batch that fails on its content (issue 14, item 2).

    python -m bench.quarantine [--rows 50000] [--poison 1 10 100] [--writer core]

On a fresh SQL catalog (SQLite) with a file warehouse, a batch of `rows` raw_events rows (the consumer's commit
size) is committed as is (the baseline: one checkpointed commit), then the same batch with k rows moved past
year 9999 (what made every commit fail in issue 14) goes through the consumer's path: the commit fails, the
bisection (`quarantine.find_poison` with `iceberg.probe_rows` per day partition, as `Consumer._find_poison`
runs it) finds the k rows, the rest is committed. Reports seconds for each and the number of probes.
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import tempfile
import time
from pathlib import Path

import pyarrow as pa
from eventpipe_consumer import iceberg
from eventpipe_consumer.quarantine import find_poison

AFTER_9999_US = 253_402_300_800 * 1_000_000
AFTER_9999_DAY = 2_932_897


def batch(rows: int, poison: int, tag: str) -> pa.Table:
    base = dt.datetime(2026, 11, 27, 13, tzinfo=dt.UTC)
    ts_us = [int(base.timestamp() * 1_000_000) + i * 1000 for i in range(rows)]
    days = [(base.date() - dt.date(1970, 1, 1)).days] * rows
    step = max(1, rows // max(1, poison))
    for n in range(poison):
        ts_us[n * step + step // 2] = AFTER_9999_US
        days[n * step + step // 2] = AFTER_9999_DAY
    return pa.table({
        "event_id": [f"{tag}-{i}" for i in range(rows)],
        "event_type": ["page_view"] * rows,
        "event_ts": pa.array(ts_us, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "event_date": pa.array(days, pa.int32()).cast(pa.date32()),
        "event_hour": pa.array([13] * rows, pa.int32()),
        "user_id": [f"u_{i % 100}" for i in range(rows)],
        "session_id": [None] * rows,
        "properties": ['{"page":"/p"}'] * rows,
        "schema_version": pa.array([1] * rows, pa.int32()),
        "ingested_at": pa.array([ts_us[0]] * rows, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "job_id": ["job-1"] * rows,
        "shard_id": ["shardId-000000000000"] * rows,
        "sequence_number": [str(i) for i in range(rows)],
    })


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--poison", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--writer", choices=["core", "pyiceberg"], default="core")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, rows {args.rows}, writer {args.writer}")
    with tempfile.TemporaryDirectory(prefix="bench-quarantine-") as tmp:
        catalog = iceberg.open_catalog("bench", {"type": "sql", "uri": f"sqlite:///{Path(tmp) / 'c.db'}",
                                                 "warehouse": (Path(tmp) / "wh").as_uri()})
        raw, _ = iceberg.ensure_tables(catalog, "shop")
        sequence = 0
        for poison in [0, *args.poison]:
            rows = batch(args.rows, poison, f"k{poison}")
            rows = rows.set_column(rows.schema.get_field_index("sequence_number"), "sequence_number",
                                   pa.array([str(sequence + i) for i in range(args.rows)]))
            piece = iceberg.Piece("shardId-000000000000", sequence, sequence + args.rows - 1, rows)
            sequence += args.rows
            probes = [0]
            started = time.perf_counter()
            try:
                iceberg.commit_pieces(raw, [piece], stream="bench", writer=args.writer, date_column="event_date")
                found: dict[int, BaseException] = {}
            except OverflowError:
                found = {}
                for positions in iceberg.partition_groups(rows, "event_date"):  # as Consumer._find_poison
                    group = rows.take(positions)

                    def check(lo: int, hi: int, group: pa.Table = group, probes: list[int] = probes) -> None:
                        probes[0] += 1
                        iceberg.probe_rows(raw, group.slice(lo, hi - lo), args.writer, "event_date")

                    found |= {positions[i]: exc for i, exc in find_poison(group.num_rows, check).items()}
                keep = pa.array([i not in found for i in range(rows.num_rows)])
                iceberg.commit_pieces(raw, [iceberg.Piece(piece.shard_id, piece.first_sequence,
                                                          piece.last_sequence, rows.filter(keep))],
                                      stream="bench", writer=args.writer, date_column="event_date")
            seconds = time.perf_counter() - started
            print(f"poison {poison:>4}: {seconds:7.2f} s, {len(found)} quarantined, {probes[0]} probes")


if __name__ == "__main__":
    main()
