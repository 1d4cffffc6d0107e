"""The limits W1 reports beside the peers: reading the file, a SIMD JSON parser alone, Parquet writing alone."""

from __future__ import annotations

from pathlib import Path


def read_only(path: Path, out: Path) -> tuple[int, int]:
    """Read the file into memory and split it into lines (what every job must at least do)."""
    data = path.read_bytes()
    return data.count(b"\n"), 0


def parse_simdjson(path: Path, out: Path) -> tuple[int, int]:
    """Parse every line with simdjson (pysimdjson), touching nothing: the parse-only limit of a SIMD parser."""
    import simdjson

    parser = simdjson.Parser()
    ok = bad = 0
    with open(path, "rb") as f:
        for line in f:
            try:
                parser.parse(line)
                ok += 1
            except ValueError:
                bad += 1
    return ok, bad


def records_table(path: Path) -> object:
    """The final records table of the project's job (prepared before the clock starts for `write_only`)."""
    import eventpipe_core as ec

    from bench.w1_data import SCHEMA

    return ec.process_batch(path.read_bytes(), schema=ec.Schema(SCHEMA)).records


def write_only(table: object, out: Path) -> tuple[int, int]:
    """Write the final records table to ZSTD Parquet with pyarrow alone: the write limit."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert isinstance(table, pa.Table)
    pq.write_table(table, out, compression="zstd")
    return table.num_rows, 0
