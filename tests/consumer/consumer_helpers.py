"""Helpers shared by the consumer tests that build raw_events rows without the Rust core."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
from eventpipe_consumer import iceberg
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

STREAM = "s"


def raw_rows(shard: str, sequences: list[int], day: int = 27) -> pa.Table:
    """raw_events rows built directly (no core needed): one event per sequence number."""
    ts = [dt.datetime(2026, 11, day, 13, 0, i % 60, tzinfo=dt.UTC) for i in range(len(sequences))]
    return pa.table({
        "event_id": [f"{shard}-{s}" for s in sequences],
        "event_type": ["page_view"] * len(sequences),
        "event_ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "event_date": pa.array([t.date() for t in ts], pa.date32()),
        "event_hour": pa.array([t.hour for t in ts], pa.int32()),
        "user_id": [None] * len(sequences),
        "session_id": [None] * len(sequences),
        "properties": ['{"page":"/"}'] * len(sequences),
        "schema_version": pa.array([1] * len(sequences), pa.int32()),
        "ingested_at": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "job_id": ["job-a" if s % 2 else "job-b" for s in sequences],
        "shard_id": [shard] * len(sequences),
        "sequence_number": [str(s) for s in sequences],
    })


def piece(shard: str, first: int, last: int) -> iceberg.Piece:
    return iceberg.Piece(shard, first, last, raw_rows(shard, list(range(first, last + 1))))


def new_tables(root: Path) -> tuple[Catalog, Table, Table]:
    catalog = iceberg.open_catalog("test", {"type": "sql", "uri": f"sqlite:///{root / 'catalog.db'}",
                                            "warehouse": (root / "warehouse").as_uri()})
    raw, rejected = iceberg.ensure_tables(catalog, "shop")
    return catalog, raw, rejected


def commit(table: Table, pieces: list[iceberg.Piece], writer: iceberg.Writer = "pyiceberg") -> iceberg.CommitOutcome:
    return iceberg.commit_pieces(table, pieces, stream=STREAM, writer=writer)
