"""The main job on embedded defaults, until the local stack exists: the Rust core on a generated sample batch.

Generates W1-shaped events (a few invalid, a few re-sent), runs `process_batch` and `write_iceberg_parquet`, and
prints what was produced and what was rejected, with the reasons. Run with `scripts/run.sh` (or `make run`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import eventpipe_core as ec
from eventpipe_common.tables import raw_events_schema
from rich.console import Console
from rich.table import Table

from bench.w1_data import SCHEMA, lines


def main(count: int = 2_000, out_dir: Path = Path(".eventpipe/demo")) -> None:
    console = Console()
    data = ("\n".join(lines(count, seed=7)) + "\n").encode()
    schema = ec.Schema(SCHEMA)
    console.rule("[bold]eventpipe core: a sample batch")
    console.print(f"input: {count:,} NDJSON lines, {len(data):,} bytes; schema: event types "
                  f"{', '.join(schema.event_types or [])}; promoted columns {schema.promoted}")

    start = time.perf_counter()
    result = ec.process_batch(data, schema=schema, job_id="demo-job")
    records = result.records
    elapsed = time.perf_counter() - start
    console.print(f"process_batch: {result.received:,} received -> [green]{records.num_rows:,} records[/], "
                  f"[red]{len(result.rejects)} rejected[/], [yellow]{result.duplicates} duplicates dropped[/] "
                  f"in {elapsed * 1000:.1f} ms")

    columns = Table(title="records: columns")
    columns.add_column("column")
    columns.add_column("Arrow type")
    for field in records.schema:
        columns.add_row(field.name, str(field.type))
    console.print(columns)

    sample = Table(title="records: the first 5")
    shown = ["source_line", "event_id", "event_type", "event_ts", "event_hour", "amount", "currency", "properties"]
    for name in shown:
        sample.add_column(name, overflow="fold", max_width=40 if name == "properties" else None)
    for row in records.slice(0, 5).to_pylist():
        sample.add_row(*[str(row[name]) for name in shown])
    console.print(sample)

    rejected = Table(title=f"rejects ({len(result.rejects)}; the first 10)")
    rejected.add_column("line", justify="right")
    rejected.add_column("reason", overflow="fold")
    rejected.add_column("raw", overflow="fold", max_width=60)
    for r in result.rejects[:10]:
        rejected.add_row(str(r.line), r.reason, r.raw)
    console.print(rejected)

    out_dir.mkdir(parents=True, exist_ok=True)
    path = (out_dir / "raw_events-sample.parquet").resolve()
    iceberg = raw_events_schema(schema.promoted)
    with_ingested = records.append_column(
        "ingested_at", records.column("event_ts").cast(records.schema.field("event_ts").type)
    )
    meta = ec.write_iceberg_parquet(with_ingested, str(path), iceberg.model_dump_json())
    console.print(f"Parquet data file (ZSTD, Iceberg field ids): [bold]{meta.path}[/], "
                  f"{meta.file_size_in_bytes:,} bytes, {meta.record_count:,} records; column sizes by field id: "
                  f"{json.dumps(meta.column_sizes)}")
    if result.rejects and records.num_rows == 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
