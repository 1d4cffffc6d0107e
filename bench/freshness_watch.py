"""The watcher of bench/freshness.py: reads raw_events while the stack writes it and maintenance runs beside it.

    python -m bench.freshness_watch --state-dir S --out DIR [--poll 2] [--stats-every 60]

A separate process (the load generator's event loop must not share its GIL). Two outputs, JSON lines:

- DIR/snapshots.jsonl: every consumer snapshot as soon as it is seen (poll every `--poll` s): its commit time
  and the per-job event counts the consumer writes in its summary (`eventpipe.jobs`). Read from the metadata
  alone, before expiry can remove the snapshot, so freshness needs no data file (compaction rewrites them).
- DIR/stats.jsonl: every `--stats-every` s, the table's health: live data files and their bytes, manifests of
  the current snapshot, snapshots kept, the current metadata.json's size and the metadata folder's size, and
  the wall time of a single-threaded DuckDB full scan (iceberg_scan of the current metadata file, several
  columns read whole), plus the machine's load average.

Stops on SIGTERM after finishing the sample under way.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import duckdb_extension_avro
import duckdb_extension_iceberg
from eventpipe_cli.catalog import load_table, settings_for
from pyiceberg.table import Table

JOBS_PROPERTY = "eventpipe.jobs"  # eventpipe_consumer.jobcounts.JOBS_PROPERTY
SCAN_SQL = ("SELECT count(*), sum(length(properties)), min(epoch_ms(ingested_at)), max(epoch_ms(event_ts)), "
            "count(DISTINCT shard_id) FROM iceberg_scan('{location}')")

stopping = False


def _stop(_signum: int, _frame: object) -> None:
    global stopping
    stopping = True


def _extension(package: ModuleType, name: str) -> str:
    """The offline DuckDB extension a Python package ships (the project pins DuckDB with these packages)."""
    return str(Path(package.__file__ or "").parent / "extensions" / f"v{duckdb.__version__}"
               / f"{name}.duckdb_extension")


def scan_seconds(metadata_location: str) -> tuple[float, int]:
    """Wall time of a DuckDB full scan of the table as of `metadata_location`, and the rows it counted."""
    connection = duckdb.connect()
    try:
        for package, name in ((duckdb_extension_avro, "avro"), (duckdb_extension_iceberg, "iceberg")):
            connection.execute(f"LOAD '{_extension(package, name)}'")
        connection.execute("SET threads = 1")  # one core: the stack under test has the other
        location = metadata_location.replace("'", "''")
        started = time.perf_counter()
        row = connection.execute(SCAN_SQL.format(location=location)).fetchone()
        elapsed = time.perf_counter() - started
    finally:
        connection.close()
    return elapsed, int(row[0]) if row is not None else 0


def _local(path: str) -> Path:
    return Path(path.removeprefix("file://"))


def table_stats(table: Table) -> dict[str, Any]:
    """Live data files, manifests and metadata sizes of the table's current state."""
    snapshot = table.current_snapshot()
    files = 0
    data_bytes = 0
    manifests = 0
    if snapshot is not None:
        for manifest in snapshot.manifests(table.io):
            manifests += 1
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                files += 1
                data_bytes += entry.data_file.file_size_in_bytes
    metadata_file = _local(table.metadata_location)
    folder = metadata_file.parent
    folder_bytes = 0
    folder_files = 0
    for child in folder.iterdir():
        try:
            folder_bytes += child.stat().st_size
            folder_files += 1
        except FileNotFoundError:  # orphan cleanup deleted it between the listing and the stat
            continue
    return {"live_data_files": files, "live_data_bytes": data_bytes, "manifests": manifests,
            "snapshots": len(table.metadata.snapshots), "metadata_json_bytes": metadata_file.stat().st_size,
            "metadata_folder_bytes": folder_bytes, "metadata_folder_files": folder_files}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.freshness_watch")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--poll", type=float, default=2.0)
    parser.add_argument("--stats-every", type=float, default=60.0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    settings = settings_for(args.state_dir)
    seen: set[int] = set()
    next_stats = time.monotonic()
    with open(args.out / "snapshots.jsonl", "a") as snaps, open(args.out / "stats.jsonl", "a") as stats:
        table = None
        while not stopping:
            if table is None:
                table = load_table(settings, "raw_events")
                if table is None:
                    time.sleep(args.poll)
                    continue
            table.refresh()
            for snapshot in table.metadata.snapshots:
                if snapshot.snapshot_id in seen:
                    continue
                seen.add(snapshot.snapshot_id)
                summary = snapshot.summary.additional_properties if snapshot.summary is not None else {}
                snaps.write(json.dumps({
                    "id": snapshot.snapshot_id, "ms": snapshot.timestamp_ms,
                    "maintenance": summary.get("eventpipe.maintenance"),
                    "operation": snapshot.summary.operation.value if snapshot.summary is not None else None,
                    "jobs": json.loads(summary.get(JOBS_PROPERTY, "{}")),
                    "added_files": int(summary.get("added-data-files", 0)),
                    "deleted_files": int(summary.get("deleted-data-files", 0))}) + "\n")
            snaps.flush()
            if time.monotonic() >= next_stats:
                next_stats = time.monotonic() + args.stats_every
                row: dict[str, Any] = {"t": time.time(), "loadavg": list(os.getloadavg())}
                row |= table_stats(table)
                row["scan_s"], row["scan_rows"] = scan_seconds(table.metadata_location)
                stats.write(json.dumps(row) + "\n")
                stats.flush()
            time.sleep(args.poll)
    return 0


if __name__ == "__main__":
    sys.exit(main())
