"""The core on several threads: process_batch cut into pieces, and the Parquet writer's columns in parallel, give
what one thread gives."""

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
    {"id": 8, "name": "properties", "required": False, "type": "string"},
    {"id": 100, "name": "amount", "required": False, "type": "double"},
    {"id": 10, "name": "source_line", "required": True, "type": "long"},
]})


@st.composite
def lines(draw: st.DrawFn) -> list[str]:
    """NDJSON lines of tens of kilobytes (so the input is cut into several pieces): valid events, exact re-sends
    and same-id variants of earlier lines (anywhere before: across the pieces' borders), rule breakers, lines
    that are not JSON, blank lines."""
    pad = draw(st.integers(min_value=100, max_value=900))
    out: list[str] = []
    for _ in range(draw(st.integers(min_value=10, max_value=80))):
        kind = draw(st.sampled_from(["event", "event", "event", "resend", "same_id", "broken", "invalid", "blank"]))
        if kind in ("resend", "same_id") and out:
            earlier = out[draw(st.integers(min_value=0, max_value=len(out) - 1))]
            if kind == "resend" or not earlier.startswith("{"):
                out.append(earlier)
                continue
            try:
                event = json.loads(earlier)
            except ValueError:
                out.append(earlier)
                continue
            event["user_id"] = draw(st.text(max_size=5))
            out.append(json.dumps(event, ensure_ascii=False))
        elif kind == "broken":
            out.append('{"event_id": "x", "event_type": "click", not json' + "z" * draw(st.integers(0, pad)))
        elif kind == "invalid":
            event = draw(events())
            event["properties"] = {"amount": -1, "pad": "p" * pad}
            out.append(json.dumps(event, ensure_ascii=False))
        elif kind == "blank":
            out.append(draw(st.sampled_from(["", "  ", "\r"])))
        else:
            event = draw(events())
            event.setdefault("properties", {})["pad"] = "p" * draw(st.integers(0, pad))
            out.append(json.dumps(event, ensure_ascii=False))
    return out


def outcome(result: Any) -> tuple[Any, ...]:
    rejects = [(r.line, r.reason, r.raw) for r in result.rejects]
    return result.records.to_pylist(), rejects, result.duplicates, result.received


@settings(max_examples=80, deadline=None)
@given(lines(), st.integers(min_value=2, max_value=8), st.sampled_from(["ndjson", "array"]), st.booleans())
def test_threads_give_the_one_thread_result(items: list[str], threads: int, form: str, include_raw: bool) -> None:
    """The same records in the same order (first valid event_id wins across the pieces the threads work on),
    the same rejects, duplicates and counts, whatever the number of threads; and the Parquet file written on
    several threads is the one written on one."""
    if form == "array":
        data = ("[" + ",".join(line for line in items if line.strip()) + "]").encode()
        fmt = "json"
    else:
        data = "\n".join(items).encode()
        fmt = "ndjson"
    try:
        one = ec.process_batch(data, format=fmt, schema=SCHEMA, include_raw=include_raw, job_id="j", threads=1)
    except ec.EventpipeError:
        # A JSON array with a broken element fails as a whole: on every number of threads alike.
        with pytest.raises(ec.EventpipeError):
            ec.process_batch(data, format=fmt, schema=SCHEMA, include_raw=include_raw, job_id="j", threads=threads)
        return
    many = ec.process_batch(data, format=fmt, schema=SCHEMA, include_raw=include_raw, job_id="j", threads=threads)
    assert outcome(many) == outcome(one)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for n in (1, threads):
            path = Path(tmp) / f"{n}.parquet"
            ec.write_iceberg_parquet(many.records, str(path), ICEBERG_SCHEMA, threads=n)
            files.append(path.read_bytes())
        assert files[0] == files[1]
        assert pq.read_table(path).num_rows == one.records.num_rows


def test_threads_default_and_bounds() -> None:
    """threads=None uses the cores the process may use; 0 is refused; more threads than pieces is fine."""
    data = b"".join(json.dumps({"event_id": f"e{i % 300}", "event_type": "click",
                                "timestamp": "2026-01-01T00:00:00Z", "properties": {"pad": "x" * 200}}).encode()
                    + b"\n" for i in range(400))
    default = ec.process_batch(data, schema=SCHEMA)
    assert (default.records.num_rows, default.duplicates) == (300, 100)
    assert outcome(ec.process_batch(data, schema=SCHEMA, threads=64)) == outcome(default)
    with pytest.raises(ValueError, match="at least 1"):
        ec.process_batch(data, schema=SCHEMA, threads=0)
