"""ndjson_file_to_parquet (an NDJSON file to one Parquet data file, chunk by chunk) gives what process_batch +
write_iceberg_parquet give for the whole file, whatever the chunk size and number of threads."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import eventpipe_core as ec
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.core_strategies import AMOUNT_SCHEMA, events

SCHEMA = ec.Schema(AMOUNT_SCHEMA)
ICEBERG_SCHEMA = json.dumps({"type": "struct", "schema-id": 0, "fields": [
    {"id": 1, "name": "event_id", "required": True, "type": "string"},
    {"id": 2, "name": "event_type", "required": True, "type": "string"},
    {"id": 3, "name": "event_ts", "required": True, "type": "timestamptz"},
    {"id": 6, "name": "user_id", "required": False, "type": "string"},
    {"id": 8, "name": "properties", "required": False, "type": "string"},
    {"id": 100, "name": "amount", "required": False, "type": "double"},
    {"id": 10, "name": "source_line", "required": True, "type": "long"},
    {"id": 11, "name": "job_id", "required": False, "type": "string"},
]})


@st.composite
def files(draw: st.DrawFn) -> bytes:
    """NDJSON of valid events, exact re-sends and same-id variants of earlier lines (anywhere before: across
    chunk borders), rule breakers, lines that are not JSON or not UTF-8, blank and CRLF lines, maybe a byte-order
    mark, maybe no final line end."""
    out: list[bytes] = []
    for _ in range(draw(st.integers(min_value=0, max_value=60))):
        kind = draw(st.sampled_from(["event", "event", "event", "resend", "same_id", "broken", "invalid", "blank",
                                     "latin1"]))
        if kind in ("resend", "same_id") and out:
            earlier = out[draw(st.integers(min_value=0, max_value=len(out) - 1))]
            try:
                event = json.loads(earlier)
            except ValueError:
                out.append(earlier)
                continue
            if kind == "same_id" and isinstance(event, dict):
                event["user_id"] = draw(st.text(max_size=5))
                earlier = json.dumps(event, ensure_ascii=False).encode()
            out.append(earlier)
        elif kind == "broken":
            out.append(b'{"event_id": "x", "event_type": "click", not json')
        elif kind == "latin1":
            out.append(b'{"event_id": "\xe9"}')
        elif kind == "invalid":
            event = draw(events())
            event["properties"] = {"amount": -1}
            out.append(json.dumps(event, ensure_ascii=False).encode())
        elif kind == "blank":
            out.append(draw(st.sampled_from([b"", b"  ", b"\r"])))
        else:
            out.append(json.dumps(draw(events()), ensure_ascii=False).encode())
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    end = b"\n" if draw(st.booleans()) else b""
    return bom + b"\n".join(out) + end


def metrics(m: Any) -> tuple[Any, ...]:
    return (m.record_count, m.value_counts, m.null_value_counts, m.lower_bounds, m.upper_bounds)


@settings(max_examples=150, deadline=None)
@given(files(), st.integers(min_value=1, max_value=4096) | st.integers(min_value=8192, max_value=1 << 16),
       st.integers(min_value=1, max_value=4), st.booleans())
def test_streaming_gives_the_batch_result(data: bytes, chunk_bytes: int, threads: int, include_raw: bool) -> None:
    """The same rows in the same order (first valid event_id wins across chunks), the same rejects (lines
    numbered in the whole file, reasons, raw text), duplicates and counts, the same Parquet contents and data
    file metrics as process_batch + write_iceberg_parquet of the whole file; chunks down to one byte, and chunks
    of 8 KiB and more, processed on worker threads (threads > 1) and merged in input order."""
    with tempfile.TemporaryDirectory() as tmp:
        src, batch_out, stream_out = Path(tmp) / "in.ndjson", Path(tmp) / "batch.parquet", Path(tmp) / "s.parquet"
        src.write_bytes(data)
        batch = ec.process_batch(data, schema=SCHEMA, include_raw=include_raw, job_id="j", threads=1)
        expected = ec.write_iceberg_parquet(batch.records, str(batch_out), ICEBERG_SCHEMA, threads=1)
        got = ec.ndjson_file_to_parquet(str(src), str(stream_out), ICEBERG_SCHEMA, schema=SCHEMA,
                                        include_raw=include_raw, job_id="j", threads=threads,
                                        chunk_bytes=chunk_bytes)
        assert [(r.line, r.reason, r.raw) for r in got.rejects] == [(r.line, r.reason, r.raw) for r in batch.rejects]
        assert (got.duplicates, got.received) == (batch.duplicates, batch.received)
        assert pq.read_table(stream_out).to_pylist() == pq.read_table(batch_out).to_pylist()
        assert metrics(got.data_file) == metrics(expected)
        assert got.data_file.file_size_in_bytes == stream_out.stat().st_size
        if chunk_bytes >= len(data) and threads == 1:
            # One chunk on one thread: the very batches of process_batch, so the very file.
            assert stream_out.read_bytes() == batch_out.read_bytes()


def test_streaming_a_large_file_in_chunks() -> None:
    """Tens of thousands of events in 64 KiB chunks on 3 worker threads: ids repeated from far back (earlier
    chunks) are dropped."""
    lines = [json.dumps({"event_id": f"e{i % 25_000}", "event_type": "click", "timestamp": "2026-01-01T00:00:00Z",
                         "properties": {"amount": i % 100}}) for i in range(30_000)]
    data = ("\n".join(lines) + "\n").encode()
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.ndjson", Path(tmp) / "out.parquet"
        src.write_bytes(data)
        got = ec.ndjson_file_to_parquet(str(src), str(out), ICEBERG_SCHEMA, schema=SCHEMA, threads=3,
                                        chunk_bytes=1 << 16)
        assert (got.data_file.record_count, got.duplicates, got.received) == (25_000, 5_000, 30_000)
        table = pq.read_table(out)
        assert table.column("source_line").to_pylist() == list(range(1, 25_001))


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=2, max_value=6), st.integers(min_value=1, max_value=1 << 15))
def test_chunks_on_workers_give_the_one_thread_result(threads: int, chunk_bytes: int) -> None:
    """Thousands of events, ids repeated from anywhere earlier, rule breakers between them, in chunks that the
    workers finish in any order: the same Parquet file contents, rejects and counts as on one thread."""
    lines = []
    for i in range(6_000):
        amount = -1 if i % 97 == 0 else i % 100
        lines.append(json.dumps({"event_id": f"e{(i * 7919) % 4_500}", "event_type": "click",
                                 "timestamp": "2026-01-01T00:00:00Z", "properties": {"amount": amount}}))
        if i % 501 == 0:
            lines.append("not json")
    data = ("\n".join(lines) + "\n").encode()
    with tempfile.TemporaryDirectory() as tmp:
        src, one, many = Path(tmp) / "in.ndjson", Path(tmp) / "one.parquet", Path(tmp) / "many.parquet"
        src.write_bytes(data)
        expected = ec.ndjson_file_to_parquet(str(src), str(one), ICEBERG_SCHEMA, schema=SCHEMA, threads=1,
                                             chunk_bytes=chunk_bytes)
        got = ec.ndjson_file_to_parquet(str(src), str(many), ICEBERG_SCHEMA, schema=SCHEMA, threads=threads,
                                        chunk_bytes=chunk_bytes)
        assert pq.read_table(many).to_pylist() == pq.read_table(one).to_pylist()
        assert [(r.line, r.reason) for r in got.rejects] == [(r.line, r.reason) for r in expected.rejects]
        assert (got.duplicates, got.received) == (expected.duplicates, expected.received)
        assert metrics(got.data_file) == metrics(expected.data_file)


@pytest.mark.parametrize("threads", [1, 3])
def test_a_writer_failure_stops_the_stream(threads: int) -> None:
    """An output the writer cannot create is an EventpipeError naming it, on one thread and with workers (which
    stop instead of waiting on a writer that is gone), and no file is left."""
    data = ("\n".join(json.dumps({"event_id": f"e{i}", "event_type": "click", "timestamp": "2026-01-01T00:00:00Z"})
                      for i in range(5_000)) + "\n").encode()
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.ndjson", Path(tmp) / "no-such-dir" / "out.parquet"
        src.write_bytes(data)
        with pytest.raises(ec.EventpipeError, match="no-such-dir"):
            ec.ndjson_file_to_parquet(str(src), str(out), ICEBERG_SCHEMA, schema=SCHEMA, threads=threads,
                                      chunk_bytes=4096)
        assert not out.exists()


def test_streaming_refuses_bad_arguments() -> None:
    """chunk_bytes and threads of 0 are refused; a missing file is an EventpipeError naming it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.parquet")
        src = Path(tmp) / "in.ndjson"
        src.write_bytes(b"")
        with pytest.raises(ValueError, match="chunk_bytes"):
            ec.ndjson_file_to_parquet(str(src), out, ICEBERG_SCHEMA, chunk_bytes=0)
        with pytest.raises(ValueError, match="threads"):
            ec.ndjson_file_to_parquet(str(src), out, ICEBERG_SCHEMA, threads=0)
        with pytest.raises(ec.EventpipeError, match="missing.ndjson"):
            ec.ndjson_file_to_parquet(str(Path(tmp) / "missing.ndjson"), out, ICEBERG_SCHEMA)
        empty = ec.ndjson_file_to_parquet(str(src), out, ICEBERG_SCHEMA)
        assert (empty.data_file.record_count, empty.received, len(empty.rejects)) == (0, 0, 0)
