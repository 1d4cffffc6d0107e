"""Where the consumer's commit path spends its CPU: one `bench.consumer` child, split by function.

    python -m bench.consumer_split [--events 500000] [--variant core-packed]

Part 1 runs `bench.consumer.run_variant` once with the functions of the path wrapped to add up the CPU time of
the thread that calls them (time.thread_time: the processing thread and the commit thread apart; helper threads
inside a call are not counted there, only in the child's total). Part 2 times the core's Parquet writer on one
commit's rows (100,000 W1 events, packed): one file per day partition as the consumer writes them, against the
same rows as one file, a 100-row file (the fixed cost per file), and the same partitions' files from one
`write_iceberg_parquet_groups` call on the unsorted rows. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

SPLIT: defaultdict[str, float] = defaultdict(float)


def _wrap(owner: Any, name: str, label: str) -> None:
    function = getattr(owner, name)

    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            SPLIT[label] += time.thread_time() - started

    setattr(owner, name, timed)


def _cpu_ms(run: Callable[[], object], repeat: int) -> float:
    """Median process CPU milliseconds of `run` over `repeat` calls."""
    times = []
    for _ in range(repeat):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return sorted(times)[len(times) // 2] * 1000


def split(variant: str, events: int) -> dict[str, Any]:
    import eventpipe_core
    import eventpipe_core.iceberg
    from eventpipe_consumer import iceberg, records
    from pyiceberg.table import Table, Transaction

    from bench import consumer
    from tests.helpers import consumer_reference

    _wrap(records, "process_records", "processing: process_records (all of it)")
    _wrap(eventpipe_core, "consume_batch", "processing: eventpipe_core.consume_batch")
    _wrap(iceberg, "commit_pieces", "commit: commit_pieces (all of it)")
    _wrap(consumer_reference, "partition_groups", "commit: partition_groups (split by day; the -take variant)")
    _wrap(iceberg, "partition_plan", "commit: partition_plan (each row's day partition)")
    _wrap(eventpipe_core, "write_iceberg_parquet", "commit: eventpipe_core.write_iceberg_parquet (-take variant)")
    _wrap(eventpipe_core, "write_iceberg_parquet_groups", "commit: eventpipe_core.write_iceberg_parquet_groups")
    _wrap(eventpipe_core.iceberg, "to_data_file", "commit: to_data_file")
    _wrap(Table, "refresh", "commit: table.refresh")
    _wrap(Transaction, "commit_transaction", "commit: pyiceberg commit_transaction")
    _wrap(records, "rejects_table", "commit: rejects_table")
    with tempfile.TemporaryDirectory(prefix="eventpipe-bench-split-") as tmp:
        out = consumer.run_variant(variant, events, Path(tmp))
    return {"run": {k: out[k] for k in ("variant", "committed", "seconds", "cpu_seconds", "events_per_cpu_s")},
            "thread_cpu_seconds": {k: round(v, 3) for k, v in sorted(SPLIT.items())}}


def files(events: int = 100_000) -> dict[str, Any]:
    import eventpipe_core
    import pyarrow as pa
    from eventpipe_consumer import iceberg, records

    from bench.consumer import _records
    from bench.w1_data import SCHEMA
    from tests.helpers.consumer_reference import partition_groups

    schema = eventpipe_core.Schema(json.dumps(SCHEMA))
    windows: dict[str, Any] = {}
    segments = [records.process_records(chunk, schema, windows.setdefault(chunk[0].shard_id,
                                                                          records.DedupeWindow(100_000)))
                for chunk in _records(events, 125)]
    rows = pa.concat_tables([s.records for s in segments])
    with tempfile.TemporaryDirectory(prefix="eventpipe-bench-split-") as tmp:
        catalog = iceberg.open_catalog("bench", {"type": "sql", "uri": f"sqlite:///{tmp}/catalog.db",
                                                 "warehouse": Path(tmp).as_uri()})
        raw, _ = iceberg.ensure_tables(catalog, "bench", schema.promoted)
        rows = rows.select(raw.schema().column_names)
        groups = partition_groups(rows, raw)
        one = pa.concat_tables([group for _, group in groups]).combine_chunks()
        iceberg_schema = raw.schema().model_dump_json()

        def write(tables: list[pa.Table], codec: Literal["zstd", "snappy"], threads: int) -> None:
            for i, table in enumerate(tables):
                eventpipe_core.write_iceberg_parquet(table, f"{tmp}/{i}.parquet", iceberg_schema, codec,
                                                     threads=threads)

        parts = [group for _, group in groups]
        out: dict[str, Any] = {"rows": rows.num_rows, "columns": rows.num_columns, "partitions": len(groups)}
        codecs: tuple[Literal["zstd", "snappy"], ...] = ("zstd", "snappy")
        for codec in codecs:
            out[codec] = {
                "per_partition_files_ms": round(_cpu_ms(functools.partial(write, parts, codec, 1), 5), 1),
                "per_partition_files_2_threads_ms": round(_cpu_ms(functools.partial(write, parts, codec, 2), 5), 1),
                "one_file_ms": round(_cpu_ms(functools.partial(write, [one], codec, 1), 5), 1),
                "file_of_100_rows_ms": round(_cpu_ms(functools.partial(write, [one.slice(0, 100)], codec, 1), 101),
                                             2),
            }
        plan = iceberg.partition_plan(rows, raw)
        paths = [f"{tmp}/g{i}.parquet" for i in range(len(plan[0]))]
        group_table = pa.table({"group": plan[1]})
        for codec in codecs:
            out[codec]["one_call_per_partition_files_ms"] = round(_cpu_ms(functools.partial(
                eventpipe_core.write_iceberg_parquet_groups, rows, group_table, paths, iceberg_schema, codec,
                threads=1), 5), 1)
        out["partition_groups_ms"] = round(_cpu_ms(functools.partial(partition_groups, rows, raw), 5), 1)
        out["partition_plan_ms"] = round(_cpu_ms(functools.partial(iceberg.partition_plan, rows, raw), 5), 1)
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--variant", default="core-packed")
    args = parser.parse_args(argv)
    print(json.dumps({"split": split(args.variant, args.events), "writer": files()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
