"""Costs of the consumer's issue-14 state work, on a real SQL catalog (SQLite) and file warehouse.

    python -m bench.consumer_state [--rows 50000] [--commits 50] [--rows-per-commit 2000]

1. `iceberg.partition_plan`: each row's partition under the table's current spec (day and hour of event_ts), the
   step of every core-writer commit (until session 8 `partition_groups`, which also moved the rows); rows spread
   over 3 days. Best of 7.
2. `recent_ids.recent_event_ids`: seeding a taken shard's dedupe window from a table of `commits` commits of
   `rows-per-commit` rows of one shard (all in the window), and for a shard with no rows. Best of 3.
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from eventpipe_common import tables as table_defs
from eventpipe_consumer import iceberg, recent_ids
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, HourTransform


def _best(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def _rows(count: int, shard: str, first: int, ts: list[datetime], ingested: datetime) -> pa.Table:
    return pa.table({
        "event_id": [f"{shard}-{first + i}" for i in range(count)],
        "event_type": ["page_view"] * count,
        "event_ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "event_date": pa.array([t.date() for t in ts], pa.date32()),
        "event_hour": pa.array([t.hour for t in ts], pa.int32()),
        "user_id": [None] * count, "session_id": [None] * count, "properties": ["{}"] * count,
        "schema_version": pa.array([1] * count, pa.int32()),
        "ingested_at": pa.array([ingested] * count, pa.timestamp("us", tz="UTC")),
        "job_id": [None] * count, "shard_id": [shard] * count,
        "sequence_number": [str(first + i) for i in range(count)],
    })


def _table(root: Path, name: str, spec: PartitionSpec) -> Table:
    catalog = iceberg.open_catalog("bench", {"type": "sql", "uri": f"sqlite:///{root / 'catalog.db'}",
                                             "warehouse": (root / "warehouse").as_uri()})
    catalog.create_namespace_if_not_exists("bench")
    return catalog.create_table(f"bench.{name}", schema=table_defs.raw_events_schema(), partition_spec=spec,
                                properties=iceberg.CONSUMER_TABLE_PROPERTIES)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--commits", type=int, default=50)
    parser.add_argument("--rows-per-commit", type=int, default=2_000)
    args = parser.parse_args()
    base = datetime(2026, 11, 27, tzinfo=UTC)
    ts = [base + timedelta(seconds=random.randint(0, 3 * 86400 - 1)) for _ in range(args.rows)]
    rows = _rows(args.rows, "s0", 1, ts, datetime.now(UTC))
    with tempfile.TemporaryDirectory(prefix="eventpipe-bench-state-") as tmp:
        root = Path(tmp)
        for name, transform in (("day", DayTransform()), ("hour", HourTransform())):
            table = _table(root, f"by_{name}", PartitionSpec(
                PartitionField(source_id=3, field_id=1000, transform=transform, name=f"event_ts_{name}")))
            groups = len(iceberg.partition_plan(rows, table)[0])
            seconds = _best(lambda t=table: iceberg.partition_plan(rows, t), 7)
            print(f"partition_plan {name}: {args.rows:,} rows -> {groups} files in {seconds * 1000:.1f} ms")
        table = _table(root, "seed", PartitionSpec(
            PartitionField(source_id=3, field_id=1000, transform=DayTransform(), name="event_ts_day")))
        now = datetime.now(UTC)
        for c in range(args.commits):
            first = c * args.rows_per_commit + 1
            piece_rows = _rows(args.rows_per_commit, "s0", first, [base] * args.rows_per_commit, now)
            iceberg.commit_pieces(table, [iceberg.Piece("s0", first, first + args.rows_per_commit - 1, piece_rows)],
                                  stream="bench", writer="core")
        for shard in ("s0", "other"):
            found = len(recent_ids.recent_event_ids(table, [shard], datetime.now(UTC), 3600, 100_000))
            seconds = _best(lambda s=shard: recent_ids.recent_event_ids(table, [s], datetime.now(UTC), 3600,
                                                                        100_000), 3)
            print(f"recent_event_ids {shard}: {found:,} ids from {args.commits} files in {seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()
