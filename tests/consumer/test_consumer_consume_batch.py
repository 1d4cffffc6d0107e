"""`eventpipe_core.consume_batch`, the consumer's one call into Rust per batch, against the Python composition it
replaced (tests/helpers/consumer_reference.py: split in Python, `process_batch`, lineage and the window in
Python): for any mix of packed and single records, valid events, re-sends, invalid events, ingest reject records
and garbage, both give the same rows with the same lineage, the same rejected rows, duplicates and job events,
and leave the shard's window remembering the same ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import eventpipe_core
import pyarrow as pa
from eventpipe_consumer.records import DedupeWindow, Segment, StreamRecord, process_records
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.consumer_reference import PyDedupeWindow
from tests.helpers.consumer_reference import process_records as reference_process_records

SHARD = "shardId-000000000003"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SCHEMA = eventpipe_core.Schema({
    "event_types": ["page_view", "purchase"],
    "fields": [{"path": "properties.amount", "type": "number", "min": 0}],
    "promote": [{"path": "properties.amount", "column": "amount", "type": "double"}],
})
IDS = [f"e{n}" for n in range(12)]  # a small pool: re-sends within a batch, across batches and against the seed

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)


def compact(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """An event as ingest publishes it ("_job_id" first when it has a job), sometimes breaking a rule."""
    job = draw(st.sampled_from([None, "job-a", "job-b"]))
    event: dict[str, Any] = {} if job is None else {"_job_id": job}
    event |= {"event_id": draw(st.sampled_from(IDS)),
              "event_type": draw(st.sampled_from(["page_view", "purchase", "unknown_type"])),
              "timestamp": draw(st.sampled_from(["2026-11-27T13:45:12Z", "2026-11-28T01:00:00.123456+02:00",
                                                 "not a time"])),
              "user_id": draw(st.one_of(st.none(), texts)),
              "properties": {"amount": draw(st.sampled_from([1, 250, -3, "x"])), "note": draw(texts)}}
    return event


def ingest_reject(line: Any, raw: str, reasons: Any, job: str | None) -> bytes:
    body: dict[str, Any] = {"_reject": {"line": line, "raw": raw, "reasons": reasons, "source": "ingest"}}
    if job is not None:
        body["_job_id"] = job
    return compact(body)


compact_lines = st.one_of(
    events().map(compact),
    st.builds(ingest_reject, st.one_of(st.none(), st.integers(1, 10**6), st.just(1.5), st.just("2")), texts,
              st.sampled_from([[{"field": "", "rule": "json", "message": "not JSON"}], "not a list"]),
              st.sampled_from([None, "job-r"])),
    st.sampled_from([b'{"_reject":"not an object"}', b"{", b'{"event_id":"e1"}', b'{"_job_id":"j\\"x"}']),
)
# Single records that are not one compact event: what only a broken producer writes. A pretty-printed event is
# made one line (its values are ones orjson, the old path's re-encoder, spells the same way).
odd_records = st.one_of(
    st.binary(max_size=24),
    st.sampled_from([b"", b"  ", b"[1,2]", b'{"a":\n tru', b"\xff\xfe{", b'{"event_id":"e2",\r"x":1}', b" {}"]),
    events().map(lambda e: json.dumps(e, indent=2, ensure_ascii=False).encode()),
)
records_data = st.one_of(
    compact_lines,
    st.lists(compact_lines, min_size=2, max_size=6).map(b"\n".join),  # packed by ingest
    odd_records,
)


def stream_records(datas: list[bytes], start: int) -> list[StreamRecord]:
    return [StreamRecord(SHARD, str(10**20 + start + i), data, 1_764_250_000_000_000 + start + i)
            for i, data in enumerate(datas)]


def table_rows(segment: Segment) -> tuple[pa.Schema, list[dict[str, Any]]] | None:
    return None if segment.records is None else (segment.records.schema, segment.records.to_pylist())


def same(got: Segment, want: Segment) -> None:
    assert table_rows(got) == table_rows(want)
    assert got.rejects == want.rejects
    assert (got.duplicates, got.received, got.events, got.bytes_read) == (
        want.duplicates, want.received, want.events, want.bytes_read)
    assert (got.first_sequence, got.last_sequence, got.shard_id) == (
        want.first_sequence, want.last_sequence, want.shard_id)
    assert got.job_events == want.job_events


@settings(max_examples=80, deadline=None)
@given(batches=st.lists(st.lists(records_data, min_size=1, max_size=12), min_size=1, max_size=3),
       capacity=st.integers(0, 8), seed=st.lists(st.sampled_from(IDS), max_size=6))
def test_consume_batch_matches_the_python_composition_it_replaced(
        batches: list[list[bytes]], capacity: int, seed: list[str]) -> None:
    """Successive batches of one shard, through both paths with windows seeded alike."""
    window, reference = DedupeWindow(capacity), PyDedupeWindow(capacity)
    window.add_all(seed)
    reference.add_all(seed)
    start = 0
    for datas in batches:
        records = stream_records(datas, start)
        start += len(datas)
        same(process_records(records, SCHEMA, window, NOW), reference_process_records(records, SCHEMA, reference, NOW))
        assert len(window) == len(reference)
        assert [event_id in window for event_id in IDS] == [event_id in reference for event_id in IDS]


def test_packed_lines_share_their_records_lineage_and_count_for_their_jobs() -> None:
    lines = [compact({"_job_id": "job-a", "event_id": f"p{i}", "event_type": "page_view",
                      "timestamp": "2026-11-27T13:45:12Z"}) for i in range(3)]
    records = stream_records([b"\n".join(lines), lines[0], b"\n".join(lines[1:])], 0)
    segment = process_records(records, SCHEMA, DedupeWindow(10), NOW)
    assert segment.records is not None
    assert segment.records["event_id"].to_pylist() == ["p0", "p1", "p2"]
    assert segment.records["sequence_number"].to_pylist() == [str(10**20)] * 3
    assert segment.duplicates == 3 and segment.events == 6 and segment.received == 3
    first, second, third = (int(r.sequence_number) for r in records)
    assert segment.job_events == [(first, "job-a")] * 3 + [(second, "job-a")] + [(third, "job-a")] * 2
