"""Parsing through the binding: NDJSON, JSON arrays, CSV, and the formats the core refuses."""

from __future__ import annotations

import csv
import io
import json
import mmap
from pathlib import Path
from typing import Any

import eventpipe_core as ec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.core_strategies import events, json_values


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=10), json_values, max_size=5), max_size=8), st.booleans())
def test_json_round_trip(objects: list[dict[str, Any]], as_array: bool) -> None:
    """Property 44: JSON parsing round-trip: serialising objects to NDJSON or a JSON array and parsing them
    gives the same objects back (integers of any size exactly)."""
    if as_array:
        data = json.dumps(objects)
    else:
        data = "".join(json.dumps(o) + "\n" for o in objects)
    assert ec.parse_json(data.encode()) == objects
    assert ec.parse(data, "json") == objects


CSV_COLUMNS = ["event_id", "event_type", "timestamp", "user_id", "session_id", "properties", "schema_version"]


@settings(max_examples=60, deadline=None)
@given(st.lists(events(), max_size=8))
def test_csv_round_trip(items: list[dict[str, Any]]) -> None:
    """Property 45: CSV parsing round-trip: events written as CSV rows (properties as JSON text) parse back to the
    same events; empty cells are absent fields."""
    items = [{k: v for k, v in e.items() if v != "" and v != {}} for e in items]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for e in items:
        row = dict(e)
        if "properties" in row:
            row["properties"] = json.dumps(row["properties"])
        writer.writerow(row)
    assert ec.parse_csv(buf.getvalue().encode()) == items
    assert ec.parse(buf.getvalue(), "csv") == items


@settings(max_examples=40, deadline=None)
@given(st.lists(events(), max_size=6))
def test_parsing_interface(items: list[dict[str, Any]]) -> None:
    """Property 9: Python-Rust parsing interface works: bytes and str inputs give lists of plain dicts equal to
    the input events, for ndjson and json."""
    data = "".join(json.dumps(e) + "\n" for e in items)
    for payload in (data, data.encode()):
        for fmt in ("ndjson", "json"):
            parsed = ec.parse(payload, fmt)
            assert isinstance(parsed, list)
            assert all(type(p) is dict for p in parsed)
            assert parsed == items


def test_read_only_buffers_are_borrowed(tmp_path: Path) -> None:
    """A memoryview or a read-only mmap of a file is accepted like bytes (no copy); a writable bytearray is not."""
    items = [{"event_id": f"e{i}", "event_type": "click", "timestamp": "2026-01-01T00:00:00Z"} for i in range(3)]
    data = "".join(json.dumps(e) + "\n" for e in items).encode() + b"not json\n"
    path = tmp_path / "events.ndjson"
    path.write_bytes(data)
    want = ec.process_batch(data)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        for payload in (memoryview(data), mapped):
            got = ec.process_batch(payload)
            assert got.records.to_pylist() == want.records.to_pylist()
            rejects = [(r.line, r.raw) for r in got.rejects]
            assert rejects == [(r.line, r.raw) for r in want.rejects] == [(4, "not json")]
            assert ec.parse(memoryview(data[:-9]), "ndjson") == items
    with pytest.raises(TypeError):
        ec.process_batch(bytearray(data))


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=12).filter(lambda f: f not in {"json", "ndjson", "csv"}))
def test_unsupported_formats(fmt: str) -> None:
    """Property 48: Unsupported formats return errors: any format other than json, ndjson, csv raises
    UnsupportedFormatError (an EventpipeError) naming the format, in parse and in process_batch."""
    with pytest.raises(ec.UnsupportedFormatError) as info:
        ec.parse(b"{}", fmt)
    assert info.value.format == fmt
    assert isinstance(info.value, ec.EventpipeError)
    with pytest.raises(ec.UnsupportedFormatError):
        ec.process_batch(b"{}", format=fmt)


def test_parse_error_names_line_and_column() -> None:
    with pytest.raises(ec.ParseError) as info:
        ec.parse_json(b'{"a": 1}\n{"a": 2}\n{"a": }\n')
    assert (info.value.line, info.value.column) == (3, 7)
    assert "line 3" in str(info.value)


def test_non_object_lines_are_parse_errors() -> None:
    with pytest.raises(ec.ParseError) as info:
        ec.parse_json(b'{"a": 1}\n[1, 2]\n')
    assert info.value.line == 2
    assert "object" in info.value.message


def test_csv_with_wrong_field_count_names_line() -> None:
    with pytest.raises(ec.ParseError) as info:
        ec.parse_csv(b"event_id,event_type\ne1,click\ne2\n")
    assert info.value.line == 3


def test_csv_bad_properties_json() -> None:
    with pytest.raises(ec.ParseError) as info:
        ec.parse_csv(b"event_id,properties\ne1,{nope\n")
    assert info.value.line == 2
    assert "properties" in info.value.message
